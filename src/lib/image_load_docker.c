/* `docker save` archives: manifest.json lists each image's config file,
 * its tags and its layer tars, base first, by path inside the archive:
 *
 *   [{"Config": "<id>.json" | "blobs/sha256/<id>",
 *     "RepoTags": ["busybox:latest"],
 *     "Layers": ["<v1id>/layer.tar" | "blobs/sha256/<diff id>", ...]}]
 *
 * Docker's layers are uncompressed tars, so each one's sha256 is its
 * diff_id: the config's rootfs.diff_ids are checked against the data, as
 * `docker load` does. Layers under blobs/ (Docker 25 and later) are the
 * OCI layout's and get its media type; the legacy directories' get
 * Docker's. */
#include "image_load_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"
#define OCI_LAYER_TAR    "application/vnd.oci.image.layer.v1.tar"

/* A path-valued member, resolved to its file entry. */
static int path_member(struct load_ctx *c, json_object *v, const char *field,
                       const struct load_image *img, struct load_entry **out)
{
	char what[160];
	snprintf(what, sizeof(what), "%s: %s", img->what, field);
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) !=
	        (size_t)json_object_get_string_len(v))
		return husk_err(c->err, EINVAL, "%s must be a path string",
		                what);
	return load_resolve(c, json_object_get_string(v), what, out);
}

static int plan_layers(struct load_ctx *c, json_object *layers,
                       struct load_image *img)
{
	if (!layers || !json_object_is_type(layers, json_type_array))
		return husk_err(c->err, EINVAL, "%s: Layers must be a list",
		                img->what);
	size_t n = json_object_array_length(layers);
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	img->layer_entries = calloc(n ? n : 1, sizeof(*img->layer_entries));
	if (!img->layers || !img->layer_entries)
		return husk_err(c->err, ENOMEM, "out of memory");
	img->n_layers = n;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(layers, i);
		char field[32];
		snprintf(field, sizeof(field), "layer %zu", i + 1);
		int rc = path_member(c, v, field, img, &img->layer_entries[i]);
		if (rc < 0)
			return rc;
		struct husk_layer_desc *l = &img->layers[i];
		const struct load_entry *e = img->layer_entries[i];
		memcpy(l->digest, e->digest, sizeof(l->digest));
		l->size = e->size;
		snprintf(l->media_type, sizeof(l->media_type), "%s",
		         strncmp(json_object_get_string(v), "blobs/", 6) == 0
		             ? OCI_LAYER_TAR
		             : DOCKER_LAYER_TAR);
	}
	return 0;
}

/* A legacy config is named after its digest ("<hex>.json"); so is a
 * blob, which the archive reader has checked already. */
static int check_config_name(struct load_ctx *c, const struct load_image *img,
                             const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n != HUSK_DIGEST_HEX + 5 || strcmp(base + HUSK_DIGEST_HEX, ".json"))
		return 0;
	if (strncmp(base, husk_digest_hex(img->config->digest),
	            HUSK_DIGEST_HEX) == 0)
		return 0;
	return husk_err(c->err, EBADMSG,
	                "%s: config '%s' is corrupt: its sha256 is %s",
	                img->what, path, img->config->digest);
}

static int plan_tags(struct load_ctx *c, json_object *tags,
                     struct load_image *img)
{
	if (!tags)
		return 0;
	if (!json_object_is_type(tags, json_type_array))
		return husk_err(c->err, EINVAL, "%s: RepoTags must be a list",
		                img->what);
	for (size_t i = 0; i < json_object_array_length(tags); i++) {
		json_object *v = json_object_array_get_idx(tags, i);
		if (!json_object_is_type(v, json_type_string))
			return husk_err(
			    c->err, EINVAL,
			    "%s: RepoTags must be a list of strings",
			    img->what);
		int rc = load_image_name(c, img, json_object_get_string(v),
		                         "RepoTags");
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int plan_one(struct load_ctx *c, json_object *o, size_t i)
{
	struct load_image *img;
	int rc = load_image_add(c, &img, "manifest.json image %zu", i + 1);
	if (rc < 0)
		return rc;
	if (!json_object_is_type(o, json_type_object))
		return husk_err(c->err, EINVAL, "%s must be an object",
		                img->what);
	json_object *config = load_member(o, "Config");
	if (!config)
		return husk_err(c->err, EINVAL, "%s: Config is missing",
		                img->what);
	rc = path_member(c, config, "Config", img, &img->config);
	if (rc == 0)
		rc = check_config_name(c, img, json_object_get_string(config));
	if (rc == 0)
		rc = plan_layers(c, load_member(o, "Layers"), img);
	if (rc == 0)
		rc = plan_tags(c, load_member(o, "RepoTags"), img);
	if (rc == 0)
		rc = load_image_config(c, img);
	return rc;
}

int load_plan_docker(struct load_ctx *c, struct load_entry *manifest)
{
	json_object *root;
	int rc = load_json(c, manifest, "manifest.json", &root);
	if (rc < 0)
		return rc;
	if (!json_object_is_type(root, json_type_array))
		rc = husk_err(c->err, EINVAL,
		              "manifest.json must be a list of images");
	for (size_t i = 0; rc == 0 && i < json_object_array_length(root); i++)
		rc = plan_one(c, json_object_array_get_idx(root, i), i);
	json_object_put(root);
	return rc;
}
