/* Image references and content digests.
 *
 * A reference names an image the way `docker pull` accepts it, and is
 * normalised the way Docker normalises it (distribution/reference):
 *
 *   busybox                    docker.io/library/busybox:latest
 *   user/app                   docker.io/user/app:latest
 *   index.docker.io/user/app   docker.io/user/app:latest
 *   localhost:5000/app:v1      localhost:5000/app:v1
 *   busybox@sha256:<hex>       docker.io/library/busybox@sha256:<hex>
 *   busybox:1.36@sha256:<hex>  keeps both the tag and the digest
 *
 * The first path component is a registry host when it contains '.' or
 * ':', is "localhost", or (as in Docker) has an uppercase letter, since
 * host names are case-insensitive but repository names must be lowercase.
 * A reference with neither tag nor digest gets the tag "latest".
 *
 * Grammar checked: registry = host-component('.'host-component)*[':'port]
 * or '['IPv6']'[':'port]; repository components [a-z0-9]+ joined by '.',
 * '_', '__' or '-'+, separated by '/'; tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
 * the full normalised name (registry/repository) at most 255 characters;
 * digests only sha256:<64 lowercase hex>. A bare 64-hex string is refused
 * as a reference, because it would be read as an image id.
 */
#ifndef HUSK_REFERENCE_H
#define HUSK_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"

/* "sha256:" + 64 hex digits + NUL. */
#define HUSK_DIGEST_MAX 72
#define HUSK_DIGEST_HEX 64
/* Longest name (registry/repository), as Docker limits it. */
#define HUSK_REF_NAME_MAX 255
/* Room for any full reference string: name ':' tag '@' digest NUL. */
#define HUSK_REF_STRING_MAX (HUSK_REF_NAME_MAX + 1 + 128 + 1 + HUSK_DIGEST_MAX)

/* Docker Hub's names: references say docker.io, the registry API lives
 * at registry-1.docker.io. */
#define HUSK_REF_DOCKER_HUB     "docker.io"
#define HUSK_REF_DOCKER_HUB_API "registry-1.docker.io"

struct husk_ref {
	char registry[256];   /* "docker.io", "localhost:5000", ... */
	char repository[256]; /* "library/busybox" */
	char tag[129];        /* "latest"; "" when only a digest was given */
	char digest[HUSK_DIGEST_MAX]; /* "sha256:<hex>" or "" */
};

/* Parses and normalises s into r. EINVAL with a message naming the
 * problem ("invalid reference format: repository name must be
 * lowercase", ...) when s is not a valid reference; r is then zeroed. */
int husk_ref_parse(const char *s, struct husk_ref *r, struct husk_error *err);

/* Writes the full normalised reference, "docker.io/library/busybox:latest"
 * (tag and digest each only when set). Returns the length, or -ENOSPC when
 * out (cap bytes) is too small; out is always NUL-terminated when cap > 0. */
int husk_ref_string(const struct husk_ref *r, char *out, size_t cap);

/* Like husk_ref_string, without tag or digest: "docker.io/library/busybox",
 * the repository name that tags and digests hang off. */
int husk_ref_name(const struct husk_ref *r, char *out, size_t cap);

/* Docker's short form for people: "busybox:latest", "user/app:v1",
 * "localhost:5000/app:v1": docker.io/ dropped, and library/ dropped when
 * the rest is a single component. Same return convention. */
int husk_ref_familiar(const struct husk_ref *r, char *out, size_t cap);

/* The host to talk the registry API with: registry-1.docker.io for Docker
 * Hub, the registry itself otherwise. */
const char *husk_ref_api_host(const struct husk_ref *r);

/* True for "sha256:" followed by exactly 64 lowercase hex digits, the only
 * digest husk stores or accepts; other algorithms give false. */
bool husk_digest_valid(const char *d);

/* True for s made of 1..64 lowercase hex digits (an image id or its
 * prefix, without "sha256:"). */
bool husk_hex_prefix_valid(const char *s);

/* The hex part of a valid digest (pointer into d, past "sha256:"). */
const char *husk_digest_hex(const char *d);

/* sha256 of n bytes at p, as "sha256:<hex>" into out. */
int husk_sha256_buf(const void *p, size_t n, char out[HUSK_DIGEST_MAX],
                    struct husk_error *err);

/* sha256 of fd's content from its current offset to the end; the byte
 * count goes to *size when size is not NULL. */
int husk_sha256_fd(int fd, char out[HUSK_DIGEST_MAX], uint64_t *size,
                   struct husk_error *err);

/* Streaming sha256 for data that arrives in pieces (downloads, layers
 * being decompressed). husk_sha256_new returns NULL when out of memory. */
struct husk_sha256;
struct husk_sha256 *husk_sha256_new(void);
int husk_sha256_update(struct husk_sha256 *h, const void *p, size_t n);
/* Writes the digest of everything so far; h may not be updated after. */
int husk_sha256_final(struct husk_sha256 *h, char out[HUSK_DIGEST_MAX]);
void husk_sha256_free(struct husk_sha256 *h);

#endif
