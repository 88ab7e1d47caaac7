/* Registry failures as messages for people: the HTTP status with the
 * registry's own error JSON ("401 Unauthorized: unauthorized:
 * authentication required"), libcurl's transport errors, each mapped to
 * the errno registry.h documents. Server text is untrusted: control
 * characters never reach the message. */
#include "registry_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *status_text(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 416: return "Range Not Satisfiable";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return reg_status_ok(status) ? "OK" : "";
	}
}

static int status_errno(long status)
{
	if (status == 401 || status == 403)
		return EACCES;
	if (status == 404)
		return ENOENT;
	if (status == 429)
		return EAGAIN;
	if (status >= 500)
		return EIO;
	return EPROTO;
}

/* Appends s to out (of cap), control characters replaced: what a
 * server says ends up on a terminal. */
static void append_clean(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);
	for (; *s && n + 1 < cap; s++)
		out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	out[n] = '\0';
}

/* "UNAUTHORIZED" -> "unauthorized", "NAME_UNKNOWN" -> "name unknown", as
 * distribution's errcode prints them. */
static void append_code(char *out, size_t cap, const char *code)
{
	char buf[64];
	size_t i = 0;
	for (; code[i] && i + 1 < sizeof(buf); i++)
		buf[i] = code[i] == '_' ? ' '
		                        : (char)tolower((unsigned char)code[i]);
	buf[i] = '\0';
	append_clean(out, cap, buf);
}

static const char *json_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The registry's {"errors":[{"code":..,"message":..}]} as
 * "code: message; ...", or a short plain-text body as it is. */
static void registry_message(const struct reg_resp *r, char *out, size_t cap)
{
	out[0] = '\0';
	if (!r->body || !r->len)
		return;
	json_object *root = json_tokener_parse(r->body);
	json_object *errs;
	if (root && json_object_object_get_ex(root, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array)) {
		size_t n = json_object_array_length(errs);
		for (size_t i = 0; i < n && i < 4; i++) {
			json_object *e = json_object_array_get_idx(errs, i);
			const char *code = json_str(e, "code");
			const char *msg = json_str(e, "message");
			if (*out)
				append_clean(out, cap, "; ");
			if (code)
				append_code(out, cap, code);
			if (code && msg)
				append_clean(out, cap, ": ");
			if (msg)
				append_clean(out, cap, msg);
		}
	} else if (root && json_object_is_type(root, json_type_object)) {
		const char *msg = json_str(root, "message");
		if (!msg)
			msg = json_str(root, "error");
		if (msg)
			append_clean(out, cap, msg);
	} else if (!root && r->len < 200) {
		/* "404 page not found\n" and the like */
		char text[200];
		size_t n = r->len;
		while (n && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r'))
			n--;
		memcpy(text, r->body, n);
		text[n] = '\0';
		append_clean(out, cap, text);
	}
	json_object_put(root);
}

int reg_status_error(const struct reg_resp *r, const char *what,
                     const char *hint, struct husk_error *err)
{
	char msg[300];
	registry_message(r, msg, sizeof(msg));
	const char *text = status_text(r->status);
	return husk_err(err, status_errno(r->status), "%s: %ld%s%s%s%s%s%s",
	                what, r->status, *text ? " " : "", text,
	                *msg ? ": " : "", msg, hint ? " " : "",
	                hint ? hint : "");
}

int reg_curl_error(CURLcode rc, const char *errbuf, const char *what,
                   struct husk_error *err)
{
	int code;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: code = EHOSTUNREACH; break;
	case CURLE_COULDNT_CONNECT: code = ECONNREFUSED; break;
	case CURLE_OPERATION_TIMEDOUT: code = ETIMEDOUT; break;
	case CURLE_OUT_OF_MEMORY: code = ENOMEM; break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL: code = EPROTO; break;
	default: code = EIO; break;
	}
	char msg[CURL_ERROR_SIZE] = "";
	append_clean(msg, sizeof(msg),
	             errbuf && *errbuf ? errbuf : curl_easy_strerror(rc));
	return husk_err(err, code, "%s: %s", what, msg);
}

int reg_err_prefix(struct husk_error *err, int rc, const char *prefix)
{
	if (!err || rc >= 0)
		return rc;
	char msg[sizeof(err->msg)];
	memcpy(msg, err->msg, sizeof(msg));
	return husk_err(err, -rc, "%s: %s", prefix, msg);
}
