/* Image references, parsed and normalised as Docker does; see
 * include/husk/reference.h for the grammar. */
#include "husk/reference.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define LEGACY_HUB "index.docker.io"
#define TAG_MAX    128

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

bool husk_digest_valid(const char *d)
{
	return d && strncmp(d, "sha256:", 7) == 0 &&
	       strlen(d + 7) == HUSK_DIGEST_HEX &&
	       all_lower_hex(d + 7, HUSK_DIGEST_HEX);
}

bool husk_hex_prefix_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= HUSK_DIGEST_HEX && all_lower_hex(s, n);
}

const char *husk_digest_hex(const char *d)
{
	return d + 7;
}

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or '-'+. */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (!is_lower_alnum(s[i]))
			return false;
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else
			while (i < n && s[i] == '-')
				i++;
		if (i == sep || i == n)
			return false; /* not a separator, or a trailing one */
	}
	return false; /* empty */
}

static bool path_valid(const char *s)
{
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (!path_component_valid(s, n))
			return false;
		if (!slash)
			return true;
		s = slash + 1;
	}
}

/* host-component: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]. */
static bool host_component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool port_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool host_valid(const char *s, size_t n)
{
	if (n > 0 && s[0] == '[') {
		/* [IPv6]: hex digits and colons inside the brackets. */
		const char *end = memchr(s, ']', n);
		if (!end || end == s + 1)
			return false;
		for (const char *p = s + 1; p < end; p++)
			if (!is_lower_hex(*p) && *p != ':' &&
			    !(*p >= 'A' && *p <= 'F'))
				return false;
		return (size_t)(end + 1 - s) == n;
	}
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!host_component_valid(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

static bool registry_valid(const char *s, size_t n)
{
	/* A port follows the last ':' outside IPv6 brackets. */
	const char *bracket = memchr(s, ']', n);
	const char *from = bracket ? bracket : s;
	const char *colon = memchr(from, ':', n - (size_t)(from - s));
	if (!colon)
		return host_valid(s, n);
	size_t host_n = (size_t)(colon - s);
	return host_valid(s, host_n) && port_valid(colon + 1, n - host_n - 1);
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TAG_MAX || !is_word(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

/* Docker's rule for "is the first component a registry host?". */
static bool looks_like_registry(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) ||
	       (n == 9 && memcmp(s, "localhost", 9) == 0) || has_upper(s, n);
}

static int bad(struct husk_ref *r, struct husk_error *err, const char *s,
               const char *why)
{
	memset(r, 0, sizeof(*r));
	return husk_err(err, EINVAL, "invalid reference format: '%s': %s", s,
	                why);
}

static int parse_digest(const char *s, const char *d, struct husk_ref *r,
                        struct husk_error *err)
{
	const char *colon = strchr(d, ':');
	if (!colon || colon == d)
		return bad(r, err, s, "digest must be ALGORITHM:HEX");
	if ((size_t)(colon - d) != 6 || strncmp(d, "sha256", 6) != 0)
		return bad(r, err, s,
		           "unsupported digest algorithm (only "
		           "sha256)");
	if (!husk_digest_valid(d))
		return bad(r, err, s,
		           "sha256 digest must be 64 lowercase hex "
		           "digits");
	memcpy(r->digest, d, strlen(d) + 1);
	return 0;
}

/* Splits "name[:tag]" (in buf, modified) into r->tag and the name. */
static int split_tag(const char *s, char *buf, struct husk_ref *r,
                     struct husk_error *err)
{
	char *slash = strrchr(buf, '/');
	char *colon = strrchr(slash ? slash : buf, ':');
	if (!colon)
		return 0;
	*colon = '\0';
	if (!tag_valid(colon + 1))
		return bad(r, err, s,
		           "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
	memcpy(r->tag, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

static int split_name(const char *s, const char *name, struct husk_ref *r,
                      struct husk_error *err)
{
	const char *slash = strchr(name, '/');
	const char *rest = name;
	const char *registry = HUSK_REF_DOCKER_HUB;
	size_t reg_n = strlen(registry);
	if (slash && looks_like_registry(name, (size_t)(slash - name))) {
		registry = name;
		reg_n = (size_t)(slash - name);
		rest = slash + 1;
		if (!registry_valid(registry, reg_n))
			return bad(r, err, s, "invalid registry host");
		if (reg_n == strlen(LEGACY_HUB) &&
		    memcmp(registry, LEGACY_HUB, reg_n) == 0) {
			registry = HUSK_REF_DOCKER_HUB;
			reg_n = strlen(registry);
		}
	}
	if (has_upper(rest, strlen(rest)))
		return bad(r, err, s, "repository name must be lowercase");
	if (!path_valid(rest))
		return bad(r, err, s, "invalid repository name");
	bool hub = reg_n == strlen(HUSK_REF_DOCKER_HUB) &&
	           memcmp(registry, HUSK_REF_DOCKER_HUB, reg_n) == 0;
	const char *lib = hub && !strchr(rest, '/') ? "library/" : "";
	if (reg_n + 1 + strlen(lib) + strlen(rest) > HUSK_REF_NAME_MAX)
		return bad(r, err, s,
		           "repository name must not be more than 255 "
		           "characters");
	memcpy(r->registry, registry, reg_n);
	r->registry[reg_n] = '\0';
	/* Fits: the length check above bounds lib + rest. */
	size_t lib_n = strlen(lib);
	memcpy(r->repository, lib, lib_n);
	memcpy(r->repository + lib_n, rest, strlen(rest) + 1);
	return 0;
}

int husk_ref_parse(const char *s, struct husk_ref *r, struct husk_error *err)
{
	memset(r, 0, sizeof(*r));
	if (!s || !*s)
		return bad(r, err, "", "empty reference");
	size_t n = strlen(s);
	if (n == HUSK_DIGEST_HEX && all_lower_hex(s, n))
		return husk_err(err, EINVAL,
		                "invalid repository name (%s), cannot specify "
		                "64-byte hexadecimal strings",
		                s);
	if (n >= HUSK_REF_STRING_MAX)
		return bad(r, err, "...", "reference too long");
	char buf[HUSK_REF_STRING_MAX];
	memcpy(buf, s, n + 1);
	char *at = strchr(buf, '@');
	int rc = 0;
	if (at) {
		*at = '\0';
		rc = parse_digest(s, at + 1, r, err);
	}
	if (rc == 0)
		rc = split_tag(s, buf, r, err);
	if (rc == 0 && !*buf)
		rc = bad(r, err, s, "missing repository name");
	if (rc == 0)
		rc = split_name(s, buf, r, err);
	if (rc == 0 && !*r->tag && !*r->digest)
		memcpy(r->tag, "latest", sizeof("latest"));
	return rc;
}

static int finish(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static int format_ref(const char *prefix, const char *repo,
                      const struct husk_ref *r, bool with_suffix, char *out,
                      size_t cap)
{
	bool tag = with_suffix && *r->tag;
	bool digest = with_suffix && *r->digest;
	int n = snprintf(out, cap, "%s%s%s%s%s%s", prefix, repo, tag ? ":" : "",
	                 tag ? r->tag : "", digest ? "@" : "",
	                 digest ? r->digest : "");
	return finish(n, cap);
}

int husk_ref_string(const struct husk_ref *r, char *out, size_t cap)
{
	char prefix[sizeof(r->registry) + 1];
	snprintf(prefix, sizeof(prefix), "%s/", r->registry);
	return format_ref(prefix, r->repository, r, true, out, cap);
}

int husk_ref_name(const struct husk_ref *r, char *out, size_t cap)
{
	char prefix[sizeof(r->registry) + 1];
	snprintf(prefix, sizeof(prefix), "%s/", r->registry);
	return format_ref(prefix, r->repository, r, false, out, cap);
}

int husk_ref_familiar(const struct husk_ref *r, char *out, size_t cap)
{
	if (strcmp(r->registry, HUSK_REF_DOCKER_HUB) != 0)
		return husk_ref_string(r, out, cap);
	const char *repo = r->repository;
	if (strncmp(repo, "library/", 8) == 0 && !strchr(repo + 8, '/'))
		repo += 8;
	return format_ref("", repo, r, true, out, cap);
}

const char *husk_ref_api_host(const struct husk_ref *r)
{
	if (strcmp(r->registry, HUSK_REF_DOCKER_HUB) == 0)
		return HUSK_REF_DOCKER_HUB_API;
	return r->registry;
}

/* sha256 through OpenSSL's EVP interface. */

struct husk_sha256 {
	EVP_MD_CTX *ctx;
};

struct husk_sha256 *husk_sha256_new(void)
{
	struct husk_sha256 *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		husk_sha256_free(h);
		return NULL;
	}
	return h;
}

int husk_sha256_update(struct husk_sha256 *h, const void *p, size_t n)
{
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -EIO;
}

int husk_sha256_final(struct husk_sha256 *h, char out[HUSK_DIGEST_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
		return -EIO;
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < len; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

void husk_sha256_free(struct husk_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int husk_sha256_buf(const void *p, size_t n, char out[HUSK_DIGEST_MAX],
                    struct husk_error *err)
{
	struct husk_sha256 *h = husk_sha256_new();
	if (!h)
		return husk_err(err, ENOMEM, "sha256: out of memory");
	int rc = husk_sha256_update(h, p, n);
	if (rc == 0)
		rc = husk_sha256_final(h, out);
	husk_sha256_free(h);
	return rc < 0 ? husk_err(err, EIO, "sha256 failed") : 0;
}

int husk_sha256_fd(int fd, char out[HUSK_DIGEST_MAX], uint64_t *size,
                   struct husk_error *err)
{
	struct husk_sha256 *h = husk_sha256_new();
	if (!h)
		return husk_err(err, ENOMEM, "sha256: out of memory");
	static const size_t chunk = 64 * 1024;
	char *buf = malloc(chunk);
	uint64_t total = 0;
	int rc = buf ? 0 : husk_err(err, ENOMEM, "sha256: out of memory");
	while (rc == 0) {
		ssize_t got = read(fd, buf, chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = husk_err_errno(err, errno, "sha256: read");
		else if (got == 0)
			break;
		else if (husk_sha256_update(h, buf, (size_t)got) < 0)
			rc = husk_err(err, EIO, "sha256 failed");
		else
			total += (uint64_t)got;
	}
	if (rc == 0 && husk_sha256_final(h, out) < 0)
		rc = husk_err(err, EIO, "sha256 failed");
	if (rc == 0 && size)
		*size = total;
	free(buf);
	husk_sha256_free(h);
	return rc;
}
