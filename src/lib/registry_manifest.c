/* Manifests and indexes: what a document is, what an image manifest
 * lists, and which entry of an index fits the platform. Everything here
 * reads registry input, so every field is checked for type and range
 * before use, and a document that could be read two ways (a mediaType
 * contradicting the Content-Type, a manifest with "manifests") is
 * refused rather than guessed at. */
#include "registry_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "husk/layer.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST                                                     \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_SCHEMA1_SIGNED                                                      \
	"application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_CONFIG    "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

const char reg_manifest_accept[] = MT_OCI_MANIFEST
    ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST;

/* ---- platforms ---- */

static void normalize_arch(char *arch, size_t cap)
{
	if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0)
		snprintf(arch, cap, "amd64");
	else if (strcmp(arch, "aarch64") == 0)
		snprintf(arch, cap, "arm64");
	else if (strcmp(arch, "i386") == 0 || strcmp(arch, "i686") == 0)
		snprintf(arch, cap, "386");
}

/* arm64 images rarely say v8, and v8 is the only arm64 there is. */
static const char *variant_of(const char *arch, const char *variant)
{
	if (strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0)
		return "";
	return variant;
}

static bool part_ok(const char *s, size_t n)
{
	if (n == 0 || n >= 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

int reg_platform_parse(const char *s, struct reg_platform *p,
                       struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	char *parts[3] = {p->os, p->arch, p->variant};
	const char *cur = s;
	int n = 0;
	for (; n < 3; n++) {
		size_t len = strcspn(cur, "/");
		if (!part_ok(cur, len))
			break;
		memcpy(parts[n], cur, len);
		for (size_t i = 0; i < len; i++)
			parts[n][i] = (char)tolower((unsigned char)parts[n][i]);
		cur += len;
		if (!*cur) {
			n++;
			break;
		}
		cur++;
	}
	if (n < 2 || *cur) {
		memset(p, 0, sizeof(*p));
		return husk_err(err, EINVAL,
		                "invalid platform '%.64s': want "
		                "os/arch[/variant], e.g. linux/arm64",
		                s);
	}
	normalize_arch(p->arch, sizeof(p->arch));
	return 0;
}

void reg_platform_string(const struct reg_platform *p, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s%s%s", p->os, p->arch, *p->variant ? "/" : "",
	         p->variant);
}

bool reg_platform_match(const struct reg_platform *want, const char *os,
                        const char *arch, const char *variant)
{
	char a[32];
	snprintf(a, sizeof(a), "%s", arch ? arch : "");
	normalize_arch(a, sizeof(a));
	if (strcmp(want->os, os ? os : "") != 0 || strcmp(want->arch, a) != 0)
		return false;
	/* No variant asked for: any variant will do. */
	return !*want->variant ||
	       strcmp(variant_of(a, want->variant),
	              variant_of(a, variant ? variant : "")) == 0;
}

/* ---- documents ---- */

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *member_string(json_object *o, const char *key)
{
	json_object *v = member(o, key);
	return v && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : NULL;
}

/* The media type without parameters ("; charset=utf-8"). */
static void bare_type(const char *ct, char *out, size_t cap)
{
	size_t n = strcspn(ct ? ct : "", "; \t");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, ct ? ct : "", n);
	out[n] = '\0';
}

static int kind_of(const char *mt, enum reg_kind *kind)
{
	if (strcmp(mt, MT_OCI_MANIFEST) == 0 ||
	    strcmp(mt, MT_DOCKER_MANIFEST) == 0)
		*kind = REG_KIND_MANIFEST;
	else if (strcmp(mt, MT_OCI_INDEX) == 0 ||
	         strcmp(mt, MT_DOCKER_LIST) == 0)
		*kind = REG_KIND_INDEX;
	else
		return -1;
	return 0;
}

static bool is_schema1(const char *mt)
{
	return strcmp(mt, MT_SCHEMA1) == 0 ||
	       strcmp(mt, MT_SCHEMA1_SIGNED) == 0;
}

static int schema1_error(struct husk_error *err)
{
	return husk_err(err, EPROTONOSUPPORT,
	                "the registry serves this image as a Docker schema 1 "
	                "manifest, a format deprecated since 2017 that husk "
	                "does not pull; push it again with a current tool");
}

/* Decides the kind from the document's mediaType and the Content-Type. */
static int decide_kind(const char *ctype, json_object *root,
                       enum reg_kind *kind, struct husk_error *err)
{
	char ct[128];
	bare_type(ctype, ct, sizeof(ct));
	const char *mt = member_string(root, "mediaType");
	json_object *ver = member(root, "schemaVersion");
	if (is_schema1(ct) || (mt && is_schema1(mt)) ||
	    (ver && json_object_is_type(ver, json_type_int) &&
	     json_object_get_int64(ver) == 1))
		return schema1_error(err);
	enum reg_kind ct_kind;
	bool ct_known = kind_of(ct, &ct_kind) == 0;
	if (mt && ct_known && strcmp(mt, ct) != 0)
		return husk_err(err, EBADMSG,
		                "manifest says mediaType %.100s but was served "
		                "as %.100s",
		                mt, ct);
	const char *type = mt ? mt : ct;
	if (kind_of(type, kind) < 0)
		return husk_err(err, EPROTONOSUPPORT,
		                "unsupported manifest media type '%.100s'",
		                *type ? type : "(none)");
	if (!ver || !json_object_is_type(ver, json_type_int) ||
	    json_object_get_int64(ver) != 2)
		return husk_err(err, EBADMSG,
		                "manifest: schemaVersion is not "
		                "2");
	return 0;
}

/* A manifest must not also be an index, nor an index a manifest. */
static int check_shape(json_object *root, enum reg_kind kind,
                       struct husk_error *err)
{
	json_object *layers = member(root, "layers");
	json_object *manifests = member(root, "manifests");
	json_object *config = member(root, "config");
	bool ok = kind == REG_KIND_MANIFEST
	              ? layers && config && !manifests &&
	                    json_object_is_type(layers, json_type_array) &&
	                    json_object_is_type(config, json_type_object)
	              : manifests && !layers && !config &&
	                    json_object_is_type(manifests, json_type_array);
	if (!ok)
		return husk_err(err, EBADMSG,
		                kind == REG_KIND_MANIFEST
		                    ? "image manifest without a config object "
		                      "and a layers array, or with manifests"
		                    : "index without a manifests array, or "
		                      "with config or layers");
	return 0;
}

int reg_manifest_decode(const char *content_type, const char *body, size_t len,
                        enum reg_kind *kind, json_object **root,
                        struct husk_error *err)
{
	*root = NULL;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return husk_err(err, ENOMEM, "out of memory");
	json_object *doc = len <= HUSK_MANIFEST_MAX
	                       ? json_tokener_parse_ex(tok, body, (int)len)
	                       : NULL;
	/* One document and nothing after it but blanks. */
	bool whole = doc != NULL;
	for (size_t i = doc ? json_tokener_get_parse_end(tok) : len; i < len;
	     i++)
		whole = whole && strchr(" \t\r\n", body[i]) && body[i];
	json_tokener_free(tok);
	int rc = 0;
	if (!doc || !whole || !json_object_is_type(doc, json_type_object))
		rc = husk_err(err, EBADMSG, "manifest is not a JSON object");
	if (rc == 0)
		rc = decide_kind(content_type, doc, kind, err);
	if (rc == 0)
		rc = check_shape(doc, *kind, err);
	if (rc < 0)
		json_object_put(doc);
	else
		*root = doc;
	return rc;
}

/* ---- descriptors ---- */

static int parse_desc(json_object *o, const char *what, struct reg_desc *d,
                      struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return husk_err(err, EBADMSG, "%s: not an object", what);
	const char *mt = member_string(o, "mediaType");
	const char *digest = member_string(o, "digest");
	json_object *size = member(o, "size");
	if (mt && strlen(mt) >= sizeof(d->media_type))
		return husk_err(err, EBADMSG, "%s: media type too long", what);
	snprintf(d->media_type, sizeof(d->media_type), "%s", mt ? mt : "");
	if (!digest)
		return husk_err(err, EBADMSG, "%s: no digest", what);
	if (!husk_digest_valid(digest))
		return husk_err(err,
		                strncmp(digest, "sha256:", 7) == 0 ||
		                        !strchr(digest, ':')
		                    ? EBADMSG
		                    : EPROTONOSUPPORT,
		                "%s: unsupported or invalid digest '%.80s' "
		                "(husk takes sha256 only)",
		                what, digest);
	snprintf(d->digest, sizeof(d->digest), "%s", digest);
	if (!size || !json_object_is_type(size, json_type_int) ||
	    json_object_get_int64(size) < 0 ||
	    json_object_get_int64(size) == INT64_MAX)
		return husk_err(err, EBADMSG, "%s: no valid size", what);
	d->size = json_object_get_int64(size);
	return 0;
}

static int parse_config_desc(json_object *root, struct reg_desc *d,
                             struct husk_error *err)
{
	int rc = parse_desc(member(root, "config"), "manifest config", d, err);
	if (rc < 0)
		return rc;
	if (strcmp(d->media_type, MT_OCI_CONFIG) != 0 &&
	    strcmp(d->media_type, MT_DOCKER_CONFIG) != 0)
		return husk_err(err, EPROTONOSUPPORT,
		                "not a container image: config media type "
		                "'%.100s'",
		                d->media_type);
	if (d->size > REG_CONFIG_MAX)
		return husk_err(err, EMSGSIZE,
		                "image config of %" PRId64 " bytes is too big",
		                d->size);
	return 0;
}

int reg_manifest_parse(json_object *root, struct reg_manifest *m,
                       struct husk_error *err)
{
	memset(m, 0, sizeof(*m));
	int rc = parse_config_desc(root, &m->config, err);
	if (rc < 0)
		return rc;
	json_object *layers = member(root, "layers");
	size_t n = json_object_array_length(layers);
	if (n > REG_MAX_LAYERS)
		return husk_err(err, EMSGSIZE, "manifest lists %zu layers", n);
	if (n && !(m->layers = calloc(n, sizeof(m->layers[0]))))
		return husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i);
		struct reg_desc *d = &m->layers[i];
		rc = parse_desc(json_object_array_get_idx(layers, i), what, d,
		                err);
		if (rc == 0 &&
		    husk_layer_check_media_type(d->media_type, err) < 0)
			rc = reg_err_prefix(err, -EPROTONOSUPPORT, what);
		if (rc < 0) {
			reg_manifest_free(m);
			return rc;
		}
		m->n_layers++;
	}
	return 0;
}

void reg_manifest_free(struct reg_manifest *m)
{
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

/* ---- indexes ---- */

/* How well an entry fits: 0 not at all, 2 exact variant, 1 another. */
static int entry_score(json_object *platform, const struct reg_platform *want)
{
	const char *os = member_string(platform, "os");
	const char *arch = member_string(platform, "architecture");
	const char *variant = member_string(platform, "variant");
	if (!os || !arch || !reg_platform_match(want, os, arch, variant))
		return 0;
	if (*want->variant)
		return 2;
	/* Nothing asked: prefer the plain or default variant (arm64 v8). */
	char a[32];
	snprintf(a, sizeof(a), "%s", arch);
	normalize_arch(a, sizeof(a));
	return *variant_of(a, variant ? variant : "") ? 1 : 2;
}

/* "linux/amd64, linux/arm64/v8" of the entries, for the error. */
static void list_platforms(json_object *manifests, char *out, size_t cap)
{
	out[0] = '\0';
	size_t n = json_object_array_length(manifests);
	for (size_t i = 0; i < n; i++) {
		json_object *p =
		    member(json_object_array_get_idx(manifests, i), "platform");
		const char *os = member_string(p, "os");
		const char *arch = member_string(p, "architecture");
		const char *v = member_string(p, "variant");
		if (!os || !arch)
			continue;
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%.20s/%.20s%s%.20s",
		         len ? ", " : "", os, arch, v && *v ? "/" : "",
		         v ? v : "");
	}
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

int reg_index_select(json_object *root, const struct reg_platform *want,
                     struct reg_desc *out, struct husk_error *err)
{
	json_object *manifests = member(root, "manifests");
	size_t n = json_object_array_length(manifests);
	int best = 0;
	for (size_t i = 0; i < n && best < 2; i++) {
		json_object *e = json_object_array_get_idx(manifests, i);
		json_object *p = member(e, "platform");
		int score = p ? entry_score(p, want) : 0;
		enum reg_kind kind;
		const char *mt = member_string(e, "mediaType");
		/* Nested indexes are left out: no registry makes them for
		 * platforms. */
		if (score <= best || !mt || kind_of(mt, &kind) < 0 ||
		    kind != REG_KIND_MANIFEST)
			continue;
		char what[40];
		snprintf(what, sizeof(what), "index entry %zu", i);
		int rc = parse_desc(e, what, out, err);
		if (rc < 0)
			return rc;
		best = score;
	}
	if (best)
		return 0;
	char want_s[100], have[300];
	reg_platform_string(want, want_s, sizeof(want_s));
	list_platforms(manifests, have, sizeof(have));
	return husk_err(err, ENOENT,
	                "no image for platform %s in the index (it has: %s)",
	                want_s, *have ? have : "none");
}
