/* JSON from archive entries, for `husk load`: strict (RFC 8259, nothing
 * after the value but white space), size-capped, with type-checked
 * accessors whose errors name the file and the field. */
#include "image_load_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep enough for any manifest or config; bounds the parser's stack. */
#define JSON_DEPTH 64

int load_text(struct load_ctx *c, struct load_entry *e, const char *what,
              const char **text, char **owned)
{
	size_t len;
	*text = NULL;
	*owned = NULL;
	if (e->size > c->lim.json_max)
		return husk_err(c->err, EMSGSIZE,
		                "%s ('%s') is %" PRIu64 " bytes, more than the "
		                "%zu allowed",
		                what, e->name, e->size, c->lim.json_max);
	if (e->data) {
		*text = e->data;
		return 0;
	}
	/* Spooled (memory_max was reached) or already in the store: read it
	 * back from there, verified. */
	int rc = load_entry_commit(c, e);
	if (rc == 0)
		rc = husk_store_blob_read(c->s, e->digest, c->lim.json_max,
		                          owned, &len, c->err);
	*text = *owned;
	return rc;
}

static bool only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", p[i]))
			return false;
	return true;
}

int load_json(struct load_ctx *c, struct load_entry *e, const char *what,
              json_object **out)
{
	const char *text;
	char *owned;
	*out = NULL;
	int rc = load_text(c, e, what, &text, &owned);
	if (rc < 0)
		return rc;
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	if (!tok) {
		free(owned);
		return husk_err(c->err, ENOMEM, "out of memory");
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	size_t len = e->size;
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (je == json_tokener_continue)
		rc = husk_err(c->err, EINVAL,
		              "%s: malformed JSON: it ends "
		              "early",
		              what);
	else if (je != json_tokener_success)
		rc = husk_err(c->err, EINVAL, "%s: malformed JSON: %s", what,
		              json_tokener_error_desc(je));
	else if (end > len || !only_space(text + end, len - end))
		rc = husk_err(c->err, EINVAL,
		              "%s: malformed JSON: data after the value", what);
	json_tokener_free(tok);
	free(owned);
	if (rc < 0) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

json_object *load_member(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

int load_string(struct load_ctx *c, json_object *o, const char *key,
                bool required, const char *what, const char **out)
{
	json_object *v = load_member(o, key);
	*out = NULL;
	if (!v && required)
		return husk_err(c->err, EINVAL, "%s: %s is missing", what, key);
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return husk_err(c->err, EINVAL, "%s: %s must be a string", what,
		                key);
	const char *s = json_object_get_string(v);
	/* C would cut the string at a NUL: refuse rather than misread. */
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return husk_err(c->err, EINVAL, "%s: %s contains a NUL byte",
		                what, key);
	*out = s;
	return 0;
}

static int desc_digest(struct load_ctx *c, json_object *o, const char *what,
                       struct load_desc *d)
{
	const char *s;
	int rc = load_string(c, o, "digest", true, what, &s);
	if (rc < 0)
		return rc;
	if (strncmp(s, "sha256:", 7) != 0 && strchr(s, ':'))
		return husk_err(c->err, EPROTONOSUPPORT,
		                "%s: unsupported digest algorithm in '%.80s'",
		                what, s);
	if (!husk_digest_valid(s))
		return husk_err(c->err, EINVAL, "%s: invalid digest '%.80s'",
		                what, s);
	snprintf(d->digest, sizeof(d->digest), "%s", s);
	return 0;
}

int load_desc_parse(struct load_ctx *c, json_object *o, const char *what,
                    struct load_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->obj = o;
	if (!json_object_is_type(o, json_type_object))
		return husk_err(c->err, EINVAL,
		                "%s: a descriptor must be an object", what);
	int rc = load_string(c, o, "mediaType", false, what, &d->media_type);
	if (rc == 0 && !d->media_type)
		d->media_type = "";
	if (rc == 0)
		rc = desc_digest(c, o, what, d);
	if (rc < 0)
		return rc;
	json_object *size = load_member(o, "size");
	if (!size || !json_object_is_type(size, json_type_int) ||
	    json_object_get_int64(size) < 0)
		return husk_err(c->err, EINVAL,
		                "%s: size must be a non-negative integer",
		                what);
	d->size = json_object_get_int64(size);
	return 0;
}
