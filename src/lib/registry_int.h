/* Internals of the registry client, shared by the registry_*.c files:
 *
 *   registry_http.c      requests: libcurl setup, the scheme rule, manual
 *                        redirects, response capture
 *   registry_error.c     HTTP and libcurl failures as messages
 *   registry_auth.c      the /v2/ probe, Basic and Bearer token auth
 *   registry_creds.c     credentials files, login and logout
 *   registry_manifest.c  manifest and index parsing, platform selection
 *   registry_blob.c      blob downloads (curl multi) into the store
 *   registry_pull.c      husk_pull: the steps in order
 *
 * The contract is include/husk/registry.h. */
#ifndef HUSK_REGISTRY_INT_H
#define HUSK_REGISTRY_INT_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/registry.h"

/* Error bodies and token responses kept, at most. */
#define REG_SMALL_BODY_MAX (64u << 10)
/* Redirects followed in a row (Docker and Go stop at 10; registries use
 * one). */
#define REG_MAX_REDIRECTS 5
/* Most layers one manifest may list (as the store). */
#define REG_MAX_LAYERS 4096
/* Largest image config accepted (the store reads configs this big). */
#define REG_CONFIG_MAX (64 * 1024 * 1024)
#define REG_HOST_MAX   256
#define REG_ORIGIN_MAX 300

/* One registry, for one pull or login: where it is and how to talk to
 * it. */
struct reg_client {
	const struct husk_pull_opts *o;
	char registry[REG_HOST_MAX]; /* as the reference says: creds key */
	char host[REG_HOST_MAX];     /* the API host[:port] */
	char repo[256];              /* "" for login */
	char origin[REG_ORIGIN_MAX]; /* "https://host" once probed */
	/* origin as reg_url_origin writes it: where authz may go */
	char auth_origin[REG_ORIGIN_MAX];
	char *user, *pass; /* credentials, NULL when none */
	char *authz;       /* "Authorization: ..." for origin, or NULL */
	char *realm;       /* Bearer challenge: the token service */
	char *service;     /* its service parameter, may be NULL */
	bool basic;        /* the registry asked for Basic auth */
	int token_refreshes;
	CURL *easy;         /* reused by the requests made one at a time */
	CURLcode last_curl; /* of the last request made with easy */
};

/* What a response said, filled by the callbacks of reg_easy_prepare.
 * Headers are those of the last response (after 1xx and redirects). */
struct reg_resp {
	long status;
	char reason[64];
	char content_type[128];
	char digest[HUSK_DIGEST_MAX + 8]; /* Docker-Content-Digest */
	char content_range[96];
	char *www_auth;         /* WWW-Authenticate, malloc'd */
	int64_t content_length; /* -1 when not sent */
	/* The body: kept up to max bytes. A 2xx body over max aborts the
	 * transfer (too_big); other bodies (errors) are cut at
	 * REG_SMALL_BODY_MAX. keep_body false drops 2xx bodies (blobs have
	 * their own writer). */
	char *body;
	size_t len, cap, max;
	bool keep_body, too_big;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- registry_http.c ---- */

/* Calls curl_global_init once per process. */
int reg_curl_init(struct husk_error *err);
int reg_client_init(struct reg_client *c, const char *registry,
                    const char *api_host, const char *repo,
                    const struct husk_pull_opts *o, struct husk_error *err);
void reg_client_free(struct reg_client *c);
/* True for a host[:port] that may be reached over plain HTTP: loopback,
 * or listed in o->insecure (as host:port, or host for every port). */
bool reg_plain_http_ok(const struct husk_pull_opts *o, const char *host);
/* Writes "scheme://host:port" of url (default port filled in, host
 * lowercased) into out. EINVAL for a URL that is not http(s), or http to
 * a host that must use HTTPS. */
int reg_url_origin(const struct husk_pull_opts *o, const char *url,
                   char out[REG_ORIGIN_MAX], struct husk_error *err);

void reg_resp_init(struct reg_resp *r, size_t max, bool keep_body);
/* Forgets the headers and body of a response (between redirects). */
void reg_resp_reset(struct reg_resp *r);
void reg_resp_free(struct reg_resp *r);
/* Resets h and sets what every request does: url, the callbacks into r,
 * no automatic redirects, http(s) only, timeouts, the CA file, and the
 * headers hdrs (may be NULL; stays the caller's). */
int reg_easy_prepare(CURL *h, const struct reg_client *c, const char *url,
                     struct reg_resp *r, struct curl_slist *hdrs,
                     struct husk_error *err);
/* libcurl's write callback for r (set by reg_easy_prepare). */
size_t reg_resp_write(char *p, size_t size, size_t nmemb, void *r);
bool reg_status_ok(long status);
/* Checks url against the scheme rule (reg_url_origin) and appends
 * "Authorization: ..." to *hdrs when its origin is auth_origin. */
int reg_add_auth(struct curl_slist **hdrs, const struct husk_pull_opts *o,
                 const char *url, const char *auth_origin,
                 const char *auth_header, struct husk_error *err);
/* GETs url (absolute, or a path under c->origin), following redirects
 * itself; auth_header goes only to URLs of auth_origin. accept may be
 * NULL. Returns 0 once a final response is in r, whatever its status; a
 * transport failure, or a 2xx body over r->max (EMSGSIZE), is an error
 * naming what. */
int reg_get(struct reg_client *c, const char *url, const char *accept,
            const char *auth_origin, const char *auth_header,
            struct reg_resp *r, const char *what, struct husk_error *err);
/* The same with c's own Authorization for c's origin. */
int reg_get_registry(struct reg_client *c, const char *path, const char *accept,
                     struct reg_resp *r, const char *what,
                     struct husk_error *err);
/* ---- registry_error.c ---- */

/* "WHAT: 404 Not Found: manifest unknown: manifest unknown", with the
 * errno the status maps to; hint (may be NULL) is appended. */
int reg_status_error(const struct reg_resp *r, const char *what,
                     const char *hint, struct husk_error *err);
/* A libcurl failure as an error: "WHAT: couldn't connect: ...". */
int reg_curl_error(CURLcode rc, const char *errbuf, const char *what,
                   struct husk_error *err);
/* Prefixes err's message with "PREFIX: " (keeping the code); returns rc. */
int reg_err_prefix(struct husk_error *err, int rc, const char *prefix);

/* ---- registry_auth.c ---- */

/* Probes GET /v2/ (HTTPS, or HTTP as reg_plain_http_ok allows), sets
 * c->origin and authenticates as the registry asks; with_creds_only
 * (login) fails with EACCES unless the credentials were verified. */
int reg_authenticate(struct reg_client *c, bool verify_creds,
                     struct husk_error *err);
/* After a 401 from a token registry: fetches a new token. Returns 1 when
 * the request is worth retrying, 0 when not (no token flow, or refreshed
 * too often), <0 on error. */
int reg_reauthenticate(struct reg_client *c, struct husk_error *err);

/* ---- registry_creds.c ---- */

/* Credentials for registry (a reference's registry name) from the files
 * (see registry.h); *user and *pass are NULL when none, else malloc'd. */
int reg_creds_lookup(const struct husk_pull_opts *o, const char *registry,
                     char **user, char **pass, struct husk_error *err);
/* A login host as people type it into a registry name: "docker.io" for
 * NULL, "" and Docker Hub's aliases; scheme and path stripped. */
int reg_login_host(const char *in, char out[REG_HOST_MAX],
                   struct husk_error *err);
/* base64 of n bytes into a malloc'd string, NULL when out of memory. */
char *reg_base64(const void *p, size_t n);

/* ---- registry_manifest.c ---- */

struct reg_desc {
	char media_type[128];
	char digest[HUSK_DIGEST_MAX];
	int64_t size;
};

struct reg_platform {
	char os[32], arch[32], variant[32];
};

enum reg_kind {
	REG_KIND_MANIFEST, /* an OCI or Docker schema 2 image manifest */
	REG_KIND_INDEX,    /* an OCI index or Docker manifest list */
};

struct reg_manifest {
	struct reg_desc config;
	struct reg_desc *layers;
	size_t n_layers;
};

/* The Accept header value for manifests. */
extern const char reg_manifest_accept[];
/* Parses "os/arch[/variant]" (aliases like x86_64 normalised). */
int reg_platform_parse(const char *s, struct reg_platform *p,
                       struct husk_error *err);
/* "os/arch[/variant]" of p into out. */
void reg_platform_string(const struct reg_platform *p, char *out, size_t cap);
/* Whether an image config's platform is the one wanted. */
bool reg_platform_match(const struct reg_platform *want, const char *os,
                        const char *arch, const char *variant);
/* Parses a manifest document (len bytes) that came with content_type:
 * what it is (its mediaType, else the Content-Type) into *kind and the
 * JSON into *root (json_object_put it). Schema 1, unknown types and a
 * mediaType that contradicts the Content-Type are refused. */
int reg_manifest_decode(const char *content_type, const char *body, size_t len,
                        enum reg_kind *kind, json_object **root,
                        struct husk_error *err);
/* The image manifest's config and layers, their media types checked. */
int reg_manifest_parse(json_object *root, struct reg_manifest *m,
                       struct husk_error *err);
void reg_manifest_free(struct reg_manifest *m);
/* The index entry for the platform wanted: ENOENT listing the platforms
 * there are when none matches. */
int reg_index_select(json_object *root, const struct reg_platform *want,
                     struct reg_desc *out, struct husk_error *err);

/* ---- registry_blob.c ---- */

/* Fetches the n blobs (duplicates allowed) from c's repository into s,
 * at most parallel at a time; blobs already in s are held instead. */
int reg_fetch_blobs(struct reg_client *c, struct husk_store *s,
                    const struct reg_desc *blobs, size_t n, unsigned parallel,
                    struct husk_error *err);

#endif
