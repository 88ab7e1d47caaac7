/* Registry authentication (the distribution token spec): GET /v2/
 * answers 200 (no auth), or 401 with a challenge. `Basic` wants the
 * credentials on every request; `Bearer realm=..,service=..` wants a token
 * from the realm, asked for the pull scope with the credentials (or
 * anonymously), sent as `Authorization: Bearer`. */
#include "registry_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest token response read. */
#define TOKEN_RESPONSE_MAX (1u << 20)

struct challenge {
	char scheme[16];
	char *realm, *service;
};

static void challenge_free(struct challenge *ch)
{
	free(ch->realm);
	free(ch->service);
}

static bool token_char(char ch)
{
	return ch &&
	       (isalnum((unsigned char)ch) || strchr("!#$%&'*+-.^_`|~", ch));
}

/* A parameter value: a token, or a quoted string with \ escapes. Only
 * printable ASCII is kept; anything else makes the challenge invalid. */
static char *param_value(const char **pp)
{
	const char *p = *pp;
	char *v = malloc(strlen(p) + 1);
	if (!v)
		return NULL;
	size_t n = 0;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			v[n++] = *p;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			v[n++] = *p++;
	}
	v[n] = '\0';
	*pp = p;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) {
			free(v);
			return NULL;
		}
	return v;
}

/* `Scheme name=value, name="value"`: the scheme, realm and service. */
static int parse_challenge(const char *h, struct challenge *ch)
{
	memset(ch, 0, sizeof(*ch));
	size_t n = 0;
	while (h[n] && token_char(h[n]) && n + 1 < sizeof(ch->scheme)) {
		ch->scheme[n] = h[n];
		n++;
	}
	ch->scheme[n] = '\0';
	const char *p = h + n;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *name = p;
		while (token_char(*p))
			p++;
		size_t nlen = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		if (!nlen || *p != '=')
			break;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		char *v = param_value(&p);
		if (!v)
			return -EPROTO;
		char **slot = NULL;
		if (nlen == 5 && strncasecmp(name, "realm", 5) == 0)
			slot = &ch->realm;
		else if (nlen == 7 && strncasecmp(name, "service", 7) == 0)
			slot = &ch->service;
		if (slot && !*slot)
			*slot = v;
		else
			free(v);
	}
	return 0;
}

/* "Authorization: Basic base64(user:pass)". */
static char *basic_header(const struct reg_client *c)
{
	size_t n = strlen(c->user) + 1 + strlen(c->pass);
	char *pair = malloc(n + 1);
	if (!pair)
		return NULL;
	snprintf(pair, n + 1, "%s:%s", c->user, c->pass);
	char *b64 = reg_base64(pair, n);
	explicit_bzero(pair, n);
	free(pair);
	char *h = NULL;
	if (b64 && asprintf(&h, "Authorization: Basic %s", b64) < 0)
		h = NULL;
	if (b64) {
		explicit_bzero(b64, strlen(b64));
		free(b64);
	}
	return h;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* realm?service=S&scope=repository:REPO:pull (scope only for a pull). */
static char *token_url(struct reg_client *c)
{
	char *svc =
	    c->service ? curl_easy_escape(c->easy, c->service, 0) : NULL;
	char scope[300] = "";
	if (c->repo[0])
		snprintf(scope, sizeof(scope), "repository:%s:pull", c->repo);
	char *sc = scope[0] ? curl_easy_escape(c->easy, scope, 0) : NULL;
	char *url = NULL;
	char sep = strchr(c->realm, '?') ? '&' : '?';
	if (asprintf(&url, "%s%c%s%s%s%s%s", c->realm, sep,
	             svc ? "service=" : "", svc ? svc : "",
	             svc && sc ? "&" : "", sc ? "scope=" : "",
	             sc ? sc : "") < 0)
		url = NULL;
	curl_free(svc);
	curl_free(sc);
	return url;
}

/* The token from {"token": ...} (or "access_token"), which must be
 * printable without blanks: it goes into a header line. */
static int take_token(struct reg_client *c, const struct reg_resp *r,
                      const char *what, struct husk_error *err)
{
	json_object *root = r->body ? json_tokener_parse(r->body) : NULL;
	json_object *v = NULL;
	if (root && !json_object_object_get_ex(root, "token", &v))
		json_object_object_get_ex(root, "access_token", &v);
	const char *tok = v && json_object_is_type(v, json_type_string)
	                      ? json_object_get_string(v)
	                      : NULL;
	bool ok = tok && *tok;
	for (const char *p = tok; ok && *p; p++)
		ok = *p > 0x20 && *p < 0x7f;
	int rc = 0;
	char *h = NULL;
	if (!ok)
		rc = husk_err(err, EPROTO, "%s: no valid token in the response",
		              what);
	else if (asprintf(&h, "Authorization: Bearer %s", tok) < 0)
		rc = husk_err(err, ENOMEM, "out of memory");
	json_object_put(root);
	if (rc == 0) {
		free_secret(c->authz);
		c->authz = h;
	}
	return rc;
}

static int fetch_token(struct reg_client *c, struct husk_error *err)
{
	char what[400];
	snprintf(what, sizeof(what), "token request to %.300s", c->realm);
	char realm_origin[REG_ORIGIN_MAX];
	int rc = reg_url_origin(c->o, c->realm, realm_origin, err);
	if (rc < 0)
		return reg_err_prefix(err, rc, what);
	char *url = token_url(c);
	char *basic = c->user ? basic_header(c) : NULL;
	struct reg_resp r;
	reg_resp_init(&r, TOKEN_RESPONSE_MAX, true);
	if (!url || (c->user && !basic))
		rc = husk_err(err, ENOMEM, "out of memory");
	else
		rc = reg_get(c, url, "application/json", realm_origin, basic,
		             &r, what, err);
	if (rc == 0 && r.status != 200)
		rc = reg_status_error(&r, what,
		                      c->user ? NULL : "(no credentials)", err);
	if (rc == 0)
		rc = take_token(c, &r, what, err);
	free(url);
	free_secret(basic);
	reg_resp_free(&r);
	return rc;
}

/* The TLS handshake failed in a way that says "not a TLS server". */
static bool not_tls(CURLcode cr)
{
	return cr == CURLE_SSL_CONNECT_ERROR || cr == CURLE_RECV_ERROR ||
	       cr == CURLE_SEND_ERROR || cr == CURLE_GOT_NOTHING ||
	       cr == CURLE_WEIRD_SERVER_REPLY;
}

static int probe_at(struct reg_client *c, const char *scheme,
                    struct reg_resp *r, struct husk_error *err)
{
	snprintf(c->origin, sizeof(c->origin), "%s://%s", scheme, c->host);
	char what[REG_ORIGIN_MAX + 16];
	snprintf(what, sizeof(what), "GET %s/v2/", c->origin);
	int rc = reg_url_origin(c->o, c->origin, c->auth_origin, err);
	if (rc == 0)
		rc = reg_get_registry(c, "/v2/", NULL, r, what, err);
	return rc;
}

/* Finds the scheme: HTTPS, or HTTP where allowed and HTTPS is not
 * spoken there (Docker's order for insecure registries). */
static int probe(struct reg_client *c, struct reg_resp *r,
                 struct husk_error *err)
{
	int rc = probe_at(c, "https", r, err);
	if (rc < 0 && reg_plain_http_ok(c->o, c->host) && not_tls(c->last_curl))
		rc = probe_at(c, "http", r, err);
	return rc;
}

/* Basic: the credentials go with every request; a login checks them. */
static int use_basic(struct reg_client *c, bool verify_creds,
                     struct reg_resp *r, struct husk_error *err)
{
	c->basic = true;
	if (!c->user)
		return 0; /* requests will fail with the registry's 401 */
	c->authz = basic_header(c);
	if (!c->authz)
		return husk_err(err, ENOMEM, "out of memory");
	if (!verify_creds)
		return 0;
	char what[REG_HOST_MAX + 16];
	snprintf(what, sizeof(what), "log in to %s", c->registry);
	int rc = reg_get_registry(c, "/v2/", NULL, r, what, err);
	if (rc == 0 && r->status != 200)
		rc = reg_status_error(r, what, NULL, err);
	return rc;
}

static int use_challenge(struct reg_client *c, bool verify_creds,
                         struct reg_resp *r, struct husk_error *err)
{
	struct challenge ch;
	if (!r->www_auth || parse_challenge(r->www_auth, &ch) < 0)
		return husk_err(err, EPROTO,
		                "registry %s answered 401 without a valid "
		                "WWW-Authenticate challenge",
		                c->registry);
	int rc;
	if (strcasecmp(ch.scheme, "Basic") == 0) {
		rc = use_basic(c, verify_creds, r, err);
	} else if (strcasecmp(ch.scheme, "Bearer") == 0 && ch.realm) {
		c->realm = ch.realm;
		c->service = ch.service;
		ch.realm = ch.service = NULL;
		rc = fetch_token(c, err);
		if (rc < 0 && verify_creds)
			rc = reg_err_prefix(err, rc, "log in");
	} else {
		rc = husk_err(err, EPROTONOSUPPORT,
		              "registry %s asks for unsupported authentication "
		              "'%.32s'",
		              c->registry, ch.scheme);
	}
	challenge_free(&ch);
	return rc;
}

int reg_authenticate(struct reg_client *c, bool verify_creds,
                     struct husk_error *err)
{
	struct reg_resp r;
	reg_resp_init(&r, REG_SMALL_BODY_MAX, true);
	int rc = probe(c, &r, err);
	if (rc == 0 && r.status == 401)
		rc = use_challenge(c, verify_creds, &r, err);
	else if (rc == 0 && r.status != 200)
		rc = reg_status_error(&r, "GET /v2/", NULL, err);
	reg_resp_free(&r);
	return rc;
}

int reg_reauthenticate(struct reg_client *c, struct husk_error *err)
{
	/* A token expires (Docker Hub's after 5 minutes); Basic
	 * credentials that failed once fail again. */
	if (!c->realm || c->token_refreshes >= 3)
		return 0;
	c->token_refreshes++;
	int rc = fetch_token(c, err);
	return rc < 0 ? rc : 1;
}
