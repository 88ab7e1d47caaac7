/* HTTP for the registry client: one place that sets libcurl up, decides
 * which URLs may be fetched (HTTPS, or plain HTTP to loopback and
 * insecure hosts), follows redirects by hand so the Authorization header
 * never reaches another origin, and captures responses within limits. */
#include "registry_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int reg_curl_init(struct husk_error *err)
{
	/* curl_global_init is not thread-safe in every libcurl build. */
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return husk_err(err, EIO, "libcurl init: %s",
		                curl_easy_strerror(curl_init_rc));
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *src, const char *what,
                    struct husk_error *err)
{
	if (strlen(src) >= cap)
		return husk_err(err, EINVAL, "%s too long: '%.64s...'", what,
		                src);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int reg_client_init(struct reg_client *c, const char *registry,
                    const char *api_host, const char *repo,
                    const struct husk_pull_opts *o, struct husk_error *err)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	int rc = reg_curl_init(err);
	if (rc == 0)
		rc = copy_str(c->registry, sizeof(c->registry), registry,
		              "registry", err);
	if (rc == 0)
		rc = copy_str(c->host, sizeof(c->host), api_host, "host", err);
	if (rc == 0)
		rc =
		    copy_str(c->repo, sizeof(c->repo), repo, "repository", err);
	if (rc < 0)
		return rc;
	c->easy = curl_easy_init();
	if (!c->easy)
		return husk_err(err, ENOMEM, "libcurl: out of memory");
	return 0;
}

void reg_client_free(struct reg_client *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	free(c->user);
	if (c->pass) {
		explicit_bzero(c->pass, strlen(c->pass));
		free(c->pass);
	}
	if (c->authz) {
		explicit_bzero(c->authz, strlen(c->authz));
		free(c->authz);
	}
	free(c->realm);
	free(c->service);
	memset(c, 0, sizeof(*c));
}

/* Splits "host:port", "[v6]:port", "host" into the bare host name. */
static void host_name(const char *host, char *name, size_t cap)
{
	const char *end;
	if (host[0] == '[') {
		host++;
		end = strchr(host, ']');
	} else {
		end = strrchr(host, ':');
	}
	size_t n = end ? (size_t)(end - host) : strlen(host);
	if (n >= cap)
		n = cap - 1;
	memcpy(name, host, n);
	name[n] = '\0';
}

static bool is_loopback(const char *name)
{
	unsigned char a[16];
	if (strcasecmp(name, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, name, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, name, a) == 1) {
		static const unsigned char one[16] = {[15] = 1};
		return memcmp(a, one, sizeof(one)) == 0;
	}
	return false;
}

bool reg_plain_http_ok(const struct husk_pull_opts *o, const char *host)
{
	char name[REG_HOST_MAX];
	host_name(host, name, sizeof(name));
	if (is_loopback(name))
		return true;
	for (const char *const *e = o ? o->insecure : NULL; e && *e; e++) {
		if (strcasecmp(*e, host) == 0)
			return true;
		/* An entry without a port allows every port of the host. */
		char ename[REG_HOST_MAX];
		host_name(*e, ename, sizeof(ename));
		if (strcmp(ename, *e) == 0 && strcasecmp(ename, name) == 0)
			return true;
	}
	return false;
}

static int url_parts(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	if (!u)
		return -ENOMEM;
	int rc = -EINVAL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) ==
	        CURLUE_OK)
		rc = 0;
	curl_url_cleanup(u);
	return rc;
}

int reg_url_origin(const struct husk_pull_opts *o, const char *url,
                   char out[REG_ORIGIN_MAX], struct husk_error *err)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = url_parts(url, &scheme, &host, &port);
	if (rc < 0) {
		rc = husk_err(err, rc == -ENOMEM ? ENOMEM : EPROTO,
		              "invalid URL '%.200s'", url);
		goto out;
	}
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	char hostport[REG_HOST_MAX + 8];
	snprintf(hostport, sizeof(hostport), "%s:%s", host, port);
	bool https = strcasecmp(scheme, "https") == 0;
	if (!https && strcasecmp(scheme, "http") != 0)
		rc = husk_err(err, EPROTO, "refusing URL '%.200s': not http(s)",
		              url);
	else if (!https && !reg_plain_http_ok(o, hostport))
		rc = husk_err(err, EPROTO,
		              "refusing plain HTTP to %s: only loopback and "
		              "insecure registries may use it",
		              hostport);
	else if ((size_t)snprintf(out, REG_ORIGIN_MAX, "%s://%s",
	                          https ? "https" : "http",
	                          hostport) >= REG_ORIGIN_MAX)
		rc = husk_err(err, EINVAL, "URL host too long");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	return rc;
}

/* ---- responses ---- */

void reg_resp_init(struct reg_resp *r, size_t max, bool keep_body)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	r->keep_body = keep_body;
	r->content_length = -1;
}

void reg_resp_reset(struct reg_resp *r)
{
	free(r->www_auth);
	r->www_auth = NULL;
	r->status = 0;
	r->reason[0] = r->content_type[0] = r->digest[0] = '\0';
	r->content_range[0] = '\0';
	r->content_length = -1;
	r->len = 0;
	if (r->body)
		r->body[0] = '\0';
	r->too_big = false;
	r->errbuf[0] = '\0';
}

void reg_resp_free(struct reg_resp *r)
{
	free(r->www_auth);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

bool reg_status_ok(long status)
{
	return status >= 200 && status < 300;
}

/* Header value without surrounding blanks and the CRLF. */
static void header_value(const char *v, size_t n, char *out, size_t cap)
{
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' ||
	             v[n - 1] == '\t'))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static void status_line(struct reg_resp *r, const char *line, size_t n)
{
	char buf[128];
	header_value(line, n, buf, sizeof(buf));
	const char *sp = strchr(buf, ' ');
	reg_resp_reset(r);
	r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
}

static bool header_is(const char *line, size_t n, const char *name,
                      const char **value, size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	*value = line + k + 1;
	*vlen = n - k - 1;
	return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ctx)
{
	struct reg_resp *r = ctx;
	size_t n = size * nitems;
	const char *v;
	size_t vn;
	char num[32];
	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		status_line(r, line, n);
	} else if (header_is(line, n, "content-type", &v, &vn)) {
		header_value(v, vn, r->content_type, sizeof(r->content_type));
	} else if (header_is(line, n, "docker-content-digest", &v, &vn)) {
		header_value(v, vn, r->digest, sizeof(r->digest));
	} else if (header_is(line, n, "content-range", &v, &vn)) {
		header_value(v, vn, r->content_range, sizeof(r->content_range));
	} else if (header_is(line, n, "www-authenticate", &v, &vn) &&
	           !r->www_auth) {
		r->www_auth = calloc(1, vn + 1);
		if (r->www_auth)
			header_value(v, vn, r->www_auth, vn + 1);
	} else if (header_is(line, n, "content-length", &v, &vn)) {
		header_value(v, vn, num, sizeof(num));
		char *end;
		errno = 0;
		long long cl = strtoll(num, &end, 10);
		if (!errno && *num && !*end && cl >= 0)
			r->content_length = cl;
		/* Refuse an oversized body before any of it arrives. */
		if (r->keep_body && reg_status_ok(r->status) &&
		    r->content_length > (int64_t)r->max) {
			r->too_big = true;
			return 0;
		}
	}
	return n;
}

static int body_append(struct reg_resp *r, const char *p, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *b = realloc(r->body, cap);
		if (!b)
			return -ENOMEM;
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return 0;
}

size_t reg_resp_write(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct reg_resp *r = ctx;
	size_t n = size * nmemb;
	if (!reg_status_ok(r->status)) {
		/* An error body: keep the start, for the message. */
		size_t room = r->len < REG_SMALL_BODY_MAX
		                  ? REG_SMALL_BODY_MAX - r->len
		                  : 0;
		if (room && body_append(r, p, n < room ? n : room) < 0)
			return 0;
		return n;
	}
	if (!r->keep_body)
		return n;
	if (n > r->max - r->len) {
		/* Counted as it arrives: no Content-Length, or a lying one. */
		r->too_big = true;
		return 0;
	}
	return body_append(r, p, n) < 0 ? 0 : n;
}

#define SETOPT(h, opt, val)                                                    \
	do {                                                                   \
		if (curl_easy_setopt(h, opt, val) != CURLE_OK)                 \
			return husk_err(err, EINVAL, "libcurl: cannot set %s", \
			                #opt);                                 \
	} while (0)

int reg_easy_prepare(CURL *h, const struct reg_client *c, const char *url,
                     struct reg_resp *r, struct curl_slist *hdrs,
                     struct husk_error *err)
{
	curl_easy_reset(h);
	SETOPT(h, CURLOPT_URL, url);
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Redirects are followed by reg_get and registry_blob.c, which
	 * decide where the Authorization header may go. */
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, CURLOPT_USERAGENT, "husk/" HUSK_VERSION);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled transfer (under 1 byte/s for a minute) fails rather
	 * than hanging the pull; a slow one is fine. */
	SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(h, CURLOPT_LOW_SPEED_TIME, 60L);
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(h, CURLOPT_HEADERDATA, r);
	SETOPT(h, CURLOPT_WRITEFUNCTION, reg_resp_write);
	SETOPT(h, CURLOPT_WRITEDATA, r);
	SETOPT(h, CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
	if (c->o && c->o->ca_file && *c->o->ca_file)
		SETOPT(h, CURLOPT_CAINFO, c->o->ca_file);
	return 0;
}

static int add_header(struct curl_slist **hdrs, const char *line,
                      struct husk_error *err)
{
	struct curl_slist *n = curl_slist_append(*hdrs, line);
	if (!n)
		return husk_err(err, ENOMEM, "out of memory");
	*hdrs = n;
	return 0;
}

int reg_add_auth(struct curl_slist **hdrs, const struct husk_pull_opts *o,
                 const char *url, const char *auth_origin,
                 const char *auth_header, struct husk_error *err)
{
	/* Checked for every URL, so no request escapes the scheme rule. */
	char origin[REG_ORIGIN_MAX];
	int rc = reg_url_origin(o, url, origin, err);
	if (rc < 0)
		return rc;
	if (!auth_header || !auth_origin || strcmp(origin, auth_origin) != 0)
		return 0;
	return add_header(hdrs, auth_header, err);
}

static bool is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/* One request of reg_get: headers for url, perform, check transport. */
static int get_once(struct reg_client *c, const char *url, const char *accept,
                    const char *auth_origin, const char *auth_header,
                    struct reg_resp *r, const char *what,
                    struct husk_error *err)
{
	struct curl_slist *hdrs = NULL;
	char line[1024];
	int rc = 0;
	if (accept) {
		snprintf(line, sizeof(line), "Accept: %s", accept);
		rc = add_header(&hdrs, line, err);
	}
	if (rc == 0)
		rc = reg_add_auth(&hdrs, c->o, url, auth_origin, auth_header,
		                  err);
	reg_resp_reset(r);
	if (rc == 0)
		rc = reg_easy_prepare(c->easy, c, url, r, hdrs, err);
	if (rc == 0) {
		CURLcode cr = curl_easy_perform(c->easy);
		c->last_curl = cr;
		if (r->too_big)
			rc = husk_err(err, EMSGSIZE,
			              "%s: response larger than %zu bytes",
			              what, r->max);
		else if (cr != CURLE_OK)
			rc = reg_curl_error(cr, r->errbuf, what, err);
	}
	curl_slist_free_all(hdrs);
	return rc;
}

int reg_get(struct reg_client *c, const char *url, const char *accept,
            const char *auth_origin, const char *auth_header,
            struct reg_resp *r, const char *what, struct husk_error *err)
{
	char *cur = strdup(url);
	if (!cur)
		return husk_err(err, ENOMEM, "out of memory");
	int rc = 0;
	for (int hop = 0;; hop++) {
		rc = get_once(c, cur, accept, auth_origin, auth_header, r, what,
		              err);
		if (rc < 0 || !is_redirect(r->status))
			break;
		char *next = NULL;
		if (hop == REG_MAX_REDIRECTS) {
			rc = husk_err(err, EPROTO, "%s: more than %d redirects",
			              what, REG_MAX_REDIRECTS);
			break;
		}
		if (curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &next) !=
		        CURLE_OK ||
		    !next) {
			rc = husk_err(err, EPROTO,
			              "%s: redirect without a "
			              "Location",
			              what);
			break;
		}
		char *dup = strdup(next);
		if (!dup) {
			rc = husk_err(err, ENOMEM, "out of memory");
			break;
		}
		free(cur);
		cur = dup;
	}
	free(cur);
	return rc;
}

int reg_get_registry(struct reg_client *c, const char *path, const char *accept,
                     struct reg_resp *r, const char *what,
                     struct husk_error *err)
{
	char url[REG_ORIGIN_MAX + 512];
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->origin, path) >=
	    sizeof(url))
		return husk_err(err, EINVAL, "%s: URL too long", what);
	return reg_get(c, url, accept, c->auth_origin, c->authz, r, what, err);
}
