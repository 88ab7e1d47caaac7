/* OCI image layouts: oci-layout says the version, index.json lists
 * descriptors, blobs/sha256/<hex> holds everything they point at.
 *
 * Each descriptor of index.json is one image. A descriptor of an image
 * index (multi-platform image) gives the manifest for this host's
 * platform among those whose blobs the archive holds; docker and
 * containerd save just that one. Every blob is checked against its
 * descriptor's digest and size; media types must be known ones. */
#include "image_load_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "husk/layer.h"

#define OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

#define NAME_ANNOTATION "io.containerd.image.name"
#define REF_ANNOTATION  "org.opencontainers.image.ref.name"

enum doc_kind { DOC_MANIFEST, DOC_INDEX };

/* The GOARCH name of this machine, as image platforms spell it. */
static const char *host_arch(char buf[65])
{
	static const struct {
		const char *machine, *goarch;
	} map[] = {
	    {"x86_64", "amd64"},    {"aarch64", "arm64"},
	    {"arm64", "arm64"},     {"armv7l", "arm"},
	    {"armv6l", "arm"},      {"armv8l", "arm"},
	    {"i386", "386"},        {"i486", "386"},
	    {"i586", "386"},        {"i686", "386"},
	    {"ppc64le", "ppc64le"}, {"s390x", "s390x"},
	    {"riscv64", "riscv64"}, {"loongarch64", "loong64"},
	};
	struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(u.machine, map[i].machine) == 0)
			return map[i].goarch;
	snprintf(buf, 65, "%s", u.machine);
	return buf;
}

static int check_layout(struct load_ctx *c)
{
	struct load_entry *e;
	json_object *o;
	const char *v;
	int rc = load_resolve(c, "oci-layout", "OCI image layout", &e);
	if (rc == -ENOENT)
		return husk_err(c->err, EINVAL,
		                "index.json without oci-layout: not an OCI "
		                "image layout");
	if (rc == 0)
		rc = load_json(c, e, "oci-layout", &o);
	if (rc < 0)
		return rc;
	rc = load_string(c, o, "imageLayoutVersion", true, "oci-layout", &v);
	if (rc == 0 && strncmp(v, "1.", 2) != 0)
		rc =
		    husk_err(c->err, EPROTONOSUPPORT,
		             "unsupported OCI image layout version '%.40s'", v);
	json_object_put(o);
	return rc;
}

/* The blob a descriptor points at, its size checked. */
static int desc_blob(struct load_ctx *c, const struct load_desc *d,
                     const char *what, struct load_entry **out)
{
	int rc = load_blob(c, d->digest, what, out);
	if (rc == 0 && (*out)->size != (uint64_t)d->size)
		rc = husk_err(c->err, EBADMSG,
		              "%s: blob %s has %" PRIu64 " bytes, its "
		              "descriptor says %" PRId64,
		              what, d->digest, (*out)->size, d->size);
	return rc;
}

/* Manifest or index, from the descriptor's media type, else the
 * document's own, else its shape (early OCI documents had none). */
static int doc_kind(struct load_ctx *c, const struct load_desc *d,
                    json_object *doc, const char *what, enum doc_kind *kind)
{
	const char *own;
	int rc = load_string(c, doc, "mediaType", false, what, &own);
	if (rc < 0)
		return rc;
	const char *mt = d->media_type[0] ? d->media_type : own ? own : "";
	if (!mt[0])
		mt = load_member(doc, "manifests") ? OCI_INDEX : OCI_MANIFEST;
	if (!strcmp(mt, OCI_MANIFEST) || !strcmp(mt, DOCKER_MANIFEST))
		*kind = DOC_MANIFEST;
	else if (!strcmp(mt, OCI_INDEX) || !strcmp(mt, DOCKER_LIST))
		*kind = DOC_INDEX;
	else
		return husk_err(c->err, EPROTONOSUPPORT,
		                "%s: unknown manifest media type '%.100s'",
		                what, mt);
	/* A document read as another kind than it says it is. */
	if (own && *d->media_type && strcmp(own, d->media_type) != 0)
		return husk_err(c->err, EINVAL,
		                "%s: descriptor says %s, the document %.100s",
		                what, d->media_type, own);
	return 0;
}

static int check_schema(struct load_ctx *c, json_object *doc, const char *what)
{
	json_object *v = load_member(doc, "schemaVersion");
	if (!json_object_is_type(doc, json_type_object))
		return husk_err(c->err, EINVAL, "%s must be a JSON object",
		                what);
	if (!v || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != 2)
		return husk_err(c->err, EPROTONOSUPPORT,
		                "%s: schemaVersion must be 2", what);
	return 0;
}

/* Names from the top descriptor's annotations; a ref.name that is only
 * a tag ("latest") names no repository and is left out. */
static int plan_names(struct load_ctx *c, json_object *ann,
                      struct load_image *img)
{
	const char *full = NULL, *ref = NULL;
	if (!ann)
		return 0;
	if (!json_object_is_type(ann, json_type_object))
		return husk_err(c->err, EINVAL,
		                "%s: annotations must be an object", img->what);
	int rc = load_string(c, ann, NAME_ANNOTATION, false, img->what, &full);
	if (rc == 0)
		rc =
		    load_string(c, ann, REF_ANNOTATION, false, img->what, &ref);
	if (rc < 0)
		return rc;
	if (full)
		return load_image_name(c, img, full, NAME_ANNOTATION);
	if (ref && strpbrk(ref, "/:@"))
		return load_image_name(c, img, ref, REF_ANNOTATION);
	return 0;
}

static int plan_config(struct load_ctx *c, json_object *doc,
                       struct load_image *img)
{
	struct load_desc d;
	char what[96];
	snprintf(what, sizeof(what), "%s: config", img->what);
	int rc = load_desc_parse(c, load_member(doc, "config"), what, &d);
	if (rc < 0)
		return rc;
	if (d.media_type[0] && strcmp(d.media_type, OCI_CONFIG) != 0 &&
	    strcmp(d.media_type, DOCKER_CONFIG) != 0)
		return husk_err(c->err, EPROTONOSUPPORT,
		                "%s: not a container image (config media type "
		                "'%.100s')",
		                img->what, d.media_type);
	return desc_blob(c, &d, what, &img->config);
}

static int plan_layer(struct load_ctx *c, json_object *o,
                      struct load_image *img, size_t i)
{
	struct load_desc d;
	char what[96];
	struct husk_error e2 = {0};
	snprintf(what, sizeof(what), "%s: layer %zu", img->what, i + 1);
	int rc = load_desc_parse(c, o, what, &d);
	if (rc < 0)
		return rc;
	rc = husk_layer_check_media_type(d.media_type, &e2);
	if (rc < 0)
		return husk_err(c->err, -rc, "%s: %s", what, e2.msg);
	rc = desc_blob(c, &d, what, &img->layer_entries[i]);
	if (rc < 0)
		return rc;
	struct husk_layer_desc *l = &img->layers[i];
	memcpy(l->digest, d.digest, sizeof(l->digest));
	l->size = (uint64_t)d.size;
	snprintf(l->media_type, sizeof(l->media_type), "%s", d.media_type);
	return 0;
}

static int plan_layers(struct load_ctx *c, json_object *doc,
                       struct load_image *img)
{
	json_object *layers = load_member(doc, "layers");
	if (!layers || !json_object_is_type(layers, json_type_array))
		return husk_err(c->err, EINVAL, "%s: layers must be a list",
		                img->what);
	size_t n = json_object_array_length(layers);
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	img->layer_entries = calloc(n ? n : 1, sizeof(*img->layer_entries));
	if (!img->layers || !img->layer_entries)
		return husk_err(c->err, ENOMEM, "out of memory");
	img->n_layers = n;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc =
		    plan_layer(c, json_object_array_get_idx(layers, i), img, i);
	return rc;
}

static int plan_manifest(struct load_ctx *c, const struct load_desc *d,
                         struct load_entry *e, json_object *doc,
                         json_object *ann, const char *what)
{
	struct load_image *img;
	int rc = load_image_add(c, &img, "%s", what);
	if (rc < 0)
		return rc;
	img->manifest = e;
	memcpy(img->manifest_digest, d->digest, sizeof(d->digest));
	rc = check_schema(c, doc, what);
	if (rc == 0)
		rc = plan_config(c, doc, img);
	if (rc == 0)
		rc = plan_layers(c, doc, img);
	if (rc == 0)
		rc = plan_names(c, ann, img);
	if (rc == 0)
		rc = load_image_config(c, img);
	return rc;
}

/* Whether an index entry is for this host: linux on its architecture;
 * one without a platform fits any. */
static bool fits_host(json_object *child)
{
	char buf[65];
	json_object *p = load_member(child, "platform");
	json_object *os = load_member(p, "os");
	json_object *arch = load_member(p, "architecture");
	if (!p)
		return true;
	return os && arch && json_object_is_type(os, json_type_string) &&
	       json_object_is_type(arch, json_type_string) &&
	       strcmp(json_object_get_string(os), "linux") == 0 &&
	       strcmp(json_object_get_string(arch), host_arch(buf)) == 0;
}

static int pick_platform(struct load_ctx *c, json_object *doc, const char *what,
                         struct load_desc *out)
{
	char buf[65], path[LOAD_NAME_MAX];
	json_object *list = load_member(doc, "manifests");
	if (!list || !json_object_is_type(list, json_type_array))
		return husk_err(c->err, EINVAL, "%s: manifests must be a list",
		                what);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *child = json_object_array_get_idx(list, i);
		int rc = load_desc_parse(c, child, what, out);
		if (rc < 0)
			return rc;
		snprintf(path, sizeof(path), "blobs/sha256/%s",
		         husk_digest_hex(out->digest));
		if (fits_host(child) && load_find(c, path))
			return 0;
	}
	return husk_err(c->err, ENOENT,
	                "%s: the archive holds no image for linux/%s", what,
	                host_arch(buf));
}

static int plan_desc(struct load_ctx *c, const struct load_desc *d,
                     json_object *ann, const char *what, int depth)
{
	struct load_entry *e;
	json_object *doc;
	enum doc_kind kind = DOC_MANIFEST;
	if (depth > LOAD_INDEX_DEPTH)
		return husk_err(c->err, ELOOP, "%s: indexes nested too deep",
		                what);
	int rc = desc_blob(c, d, what, &e);
	if (rc == 0)
		rc = load_json(c, e, what, &doc);
	if (rc < 0)
		return rc;
	rc = doc_kind(c, d, doc, what, &kind);
	if (rc == 0 && kind == DOC_MANIFEST)
		rc = plan_manifest(c, d, e, doc, ann, what);
	if (rc == 0 && kind == DOC_INDEX) {
		struct load_desc child;
		rc = check_schema(c, doc, what);
		if (rc == 0)
			rc = pick_platform(c, doc, what, &child);
		if (rc == 0)
			rc = plan_desc(c, &child, ann, what, depth + 1);
	}
	json_object_put(doc);
	return rc;
}

int load_plan_oci(struct load_ctx *c)
{
	struct load_entry *e;
	json_object *index;
	int rc = check_layout(c);
	if (rc == 0)
		rc = load_resolve(c, "index.json", "OCI image layout", &e);
	if (rc == 0)
		rc = load_json(c, e, "index.json", &index);
	if (rc < 0)
		return rc;
	rc = check_schema(c, index, "index.json");
	json_object *list = load_member(index, "manifests");
	if (rc == 0 && (!list || !json_object_is_type(list, json_type_array)))
		rc = husk_err(c->err, EINVAL,
		              "index.json: manifests must be a list");
	for (size_t i = 0; rc == 0 && i < json_object_array_length(list); i++) {
		json_object *o = json_object_array_get_idx(list, i);
		char what[64];
		struct load_desc d;
		snprintf(what, sizeof(what), "index.json manifest %zu", i + 1);
		rc = load_desc_parse(c, o, what, &d);
		if (rc == 0)
			rc = plan_desc(c, &d, load_member(o, "annotations"),
			               what, 0);
	}
	json_object_put(index);
	return rc;
}
