/* Pulling images from registries (the Docker Registry HTTP API v2, which
 * the OCI distribution spec standardises), and the credentials for them.
 *
 * A pull resolves a reference (husk/reference.h) against its registry:
 *
 *  1. GET /v2/ learns how the registry authenticates. A 401 with
 *     `WWW-Authenticate: Bearer realm=..,service=..` starts the token flow:
 *     a GET of the realm for the scope "repository:REPO:pull", with HTTP
 *     Basic credentials when husk knows some for the registry, anonymous
 *     otherwise; the token then goes along as `Authorization: Bearer`. A
 *     `Basic` challenge sends the credentials with every request.
 *  2. The manifest by tag or digest, accepting OCI manifests and indexes
 *     and Docker schema 2 manifests and manifest lists. An index (or list)
 *     gives the manifest for the platform asked for. Refused: Docker schema
 *     1 and unknown media types (EPROTONOSUPPORT), manifests over
 *     HUSK_MANIFEST_MAX (EMSGSIZE, noticed from Content-Length or while
 *     receiving, so a huge one is never buffered), a manifest whose sha256
 *     differs from the digest asked for, the index's descriptor or the
 *     registry's Docker-Content-Digest header (EBADMSG).
 *  3. The config blob, then the layer blobs, several at a time, into the
 *     store (husk/store.h) with their expected digest and size, which the
 *     store verifies. Blobs already in the store are held, not fetched.
 *     Downloads are resumable: an interrupted one (the connection cut, or
 *     a body that ends early) fails the pull but stays in the store's
 *     partial/, and the next pull asks for the rest with a Range request
 *     (a server that ignores it sends everything; the bytes already
 *     there are skipped). A resumed blob that then fails its digest had
 *     a damaged partial: it is fetched once more from the start. A stall
 *     (under 1 byte/s for 60 s) fails like a cut. An expired token (401
 *     from a token registry) is renewed, at most 3 times a pull.
 *  4. husk_store_image_put records the image under the reference's tag and
 *     as NAME@DIGEST, DIGEST being what the reference resolved to (the
 *     index for a multi-platform image, as Docker's RepoDigests).
 *
 * A failed pull changes no record or tag: blobs it completed are dropped
 * from its lease (husk_store_release) for the next prune, partial
 * downloads stay to be resumed.
 *
 * Transport: HTTPS, verified by libcurl (against ca_file when given). Plain
 * HTTP only for registries listed in insecure and for loopback hosts
 * (localhost, 127.0.0.0/8, ::1), as in Docker; for those husk tries HTTPS
 * first and falls back to HTTP when the TLS handshake fails. Redirects
 * (blob storage) are followed by husk itself, at most 5 in a row, under
 * the same scheme rule; the Authorization header goes only to the
 * registry's own origin (scheme, host and port), never to a redirect
 * target elsewhere. Only sha256 digests are accepted.
 *
 * Credentials live in docker-style JSON:
 *   {"auths": {"HOST": {"auth": "base64(USER:PASSWORD)"}}}
 * (entries with "username" and "password" are read too). husk's own file
 * is opts->auth_file, else $HUSK_AUTH_FILE, else
 * ~/.config/husk/auth.json; when neither opts->auth_file nor
 * $HUSK_AUTH_FILE is set, Docker's $DOCKER_CONFIG/config.json (default
 * ~/.docker/config.json) is read after it. Docker Hub entries may be keyed
 * docker.io, index.docker.io, registry-1.docker.io or
 * https://index.docker.io/v1/. Credential helpers (credsStore) are not
 * supported.
 *
 * Errors name the step and, for an HTTP failure, the status and the
 * registry's error JSON ("401 Unauthorized: unauthorized: authentication
 * required"). errno values: ENOENT (no such manifest, tag or platform),
 * EACCES (401/403), EPROTONOSUPPORT, EMSGSIZE, EBADMSG (digest or size
 * mismatch), ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT, EIO (a transfer cut
 * short: the message says how much was kept, a 5xx), EPROTO (TLS, a
 * refused plain-HTTP URL, anything else the server got wrong), EINVAL (a
 * bad reference or option). A blob that another process is downloading
 * into the same store is waited for, then held (or, should that process
 * give up, resumed from its partial).
 */
#ifndef HUSK_REGISTRY_H
#define HUSK_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"
#include "husk/store.h"

/* Largest manifest or index accepted, as containerd. */
#define HUSK_MANIFEST_MAX (4u << 20)
/* Default platform and number of concurrent blob downloads. */
#define HUSK_PULL_DEFAULT_PLATFORM "linux/amd64"
#define HUSK_PULL_DEFAULT_PARALLEL 3
/* Upper bound on opts->parallel. */
#define HUSK_PULL_MAX_PARALLEL 16

/* One blob's progress. done starts at the resume point of a partial
 * download (so done > 0 on the first report means a resume); finished is
 * true once the blob is verified in the store, or was there already. */
struct husk_pull_progress {
	const char *digest;
	uint64_t done, total;
	bool finished;
};

struct husk_pull_opts {
	/* "os/arch[/variant]"; NULL: HUSK_PULL_DEFAULT_PLATFORM. Given
	 * explicitly, a single-platform image whose config names another
	 * platform is refused (ENOENT), as docker pull --platform does. */
	const char *platform;
	/* Registry hosts ("host" or "host:port") that may be reached over
	 * plain HTTP; NULL-terminated, may be NULL. Loopback always may. */
	const char *const *insecure;
	/* husk's credentials file; see above for the default. */
	const char *auth_file;
	/* Concurrent blob downloads; 0: HUSK_PULL_DEFAULT_PARALLEL. */
	unsigned parallel;
	/* Called from the pulling thread as blobs progress (throttled). */
	void (*progress)(const struct husk_pull_progress *p, void *ctx);
	void *progress_ctx;
	/* PEM CA bundle for HTTPS instead of the system's; may be NULL. */
	const char *ca_file;
};

/* Pulls ref (a reference as `docker pull` takes it) into the store s and
 * fills out (may be NULL; free with husk_image_free) with the image's
 * record. o may be NULL for the defaults. */
int husk_pull(struct husk_store *s, const char *ref,
              const struct husk_pull_opts *o, struct husk_image *out,
              struct husk_error *err);

/* `husk login`: checks user and password against the registry host
 * (NULL or "": docker.io; "https://" and a path are stripped, Docker Hub's
 * aliases become docker.io) with GET /v2/ and, for a token registry, the
 * token request; EACCES when the registry refuses them. Then stores them
 * in husk's credentials file, created 0600 (its directory 0700) and
 * replaced atomically, keeping its other entries. */
int husk_registry_login(const char *host, const char *user,
                        const char *password, const struct husk_pull_opts *o,
                        struct husk_error *err);

/* `husk logout`: removes host's entry from husk's credentials file;
 * ENOENT "not logged in to HOST" when there is none. */
int husk_registry_logout(const char *host, const struct husk_pull_opts *o,
                         struct husk_error *err);

/* Writes the path of husk's credentials file (see above) into out; ENOENT
 * when no home directory is known, ENOSPC when cap is too small. */
int husk_registry_auth_path(const struct husk_pull_opts *o, char *out,
                            size_t cap, struct husk_error *err);

#endif
