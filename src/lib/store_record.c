/* Image records, images/<id-hex>.json: what an image is made of. Tags
 * live in repositories.json and container users in refs/, so a record
 * changes only when an image is (re)put or deleted. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define RECORD_SCHEMA 1

static void record_name(const char *id, char out[HUSK_DIGEST_MAX + 8])
{
	snprintf(out, HUSK_DIGEST_MAX + 8, "%s.json", husk_digest_hex(id));
}

void husk_image_free(struct husk_image *img)
{
	if (!img)
		return;
	free(img->layers);
	for (size_t i = 0; i < img->n_refs; i++)
		free(img->refs[i]);
	free(img->refs);
	memset(img, 0, sizeof(*img));
}

/* Copies the string field key into dst; absent gives "" unless required,
 * a digest field (is_digest) must be a valid digest or "". */
static bool get_str(json_object *o, const char *key, char *dst, size_t cap,
                    bool required, bool is_digest)
{
	json_object *v;
	*dst = '\0';
	if (!json_object_object_get_ex(o, key, &v))
		return !required;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) >= cap)
		return false;
	memcpy(dst, json_object_get_string(v),
	       (size_t)json_object_get_string_len(v) + 1);
	return !is_digest || (!*dst && !required) || husk_digest_valid(dst);
}

static bool get_u64(json_object *o, const char *key, uint64_t *dst)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return false;
	*dst = (uint64_t)json_object_get_int64(v);
	return true;
}

static bool parse_layer(json_object *o, struct husk_image_layer *l)
{
	return json_object_is_type(o, json_type_object) &&
	       get_str(o, "digest", l->digest, sizeof(l->digest), true, true) &&
	       get_str(o, "diff_id", l->diff_id, sizeof(l->diff_id), true,
	               true) &&
	       get_u64(o, "size", &l->size) &&
	       get_str(o, "media_type", l->media_type, sizeof(l->media_type),
	               false, false);
}

static bool parse_layers(json_object *root, struct husk_image *img)
{
	json_object *arr;
	if (!json_object_object_get_ex(root, "layers", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return false;
	size_t n = json_object_array_length(arr);
	if (n > STORE_MAX_LAYERS)
		return false;
	img->layers = n ? calloc(n, sizeof(img->layers[0])) : NULL;
	if (n && !img->layers)
		return false;
	img->n_layers = n;
	for (size_t i = 0; i < n; i++)
		if (!parse_layer(json_object_array_get_idx(arr, i),
		                 &img->layers[i]))
			return false;
	return true;
}

static bool parse_record(json_object *root, struct husk_image *img)
{
	uint64_t schema = 0, stored_at = 0;
	bool ok = json_object_is_type(root, json_type_object) &&
	          get_u64(root, "schema", &schema) && schema == RECORD_SCHEMA &&
	          get_str(root, "id", img->id, sizeof(img->id), true, true) &&
	          get_str(root, "config_digest", img->config_digest,
	                  sizeof(img->config_digest), true, true) &&
	          get_str(root, "manifest_digest", img->manifest_digest,
	                  sizeof(img->manifest_digest), false, true) &&
	          get_str(root, "os", img->os, sizeof(img->os), false, false) &&
	          get_str(root, "architecture", img->architecture,
	                  sizeof(img->architecture), false, false) &&
	          get_str(root, "variant", img->variant, sizeof(img->variant),
	                  false, false) &&
	          get_str(root, "created", img->created, sizeof(img->created),
	                  false, false) &&
	          get_u64(root, "stored_at", &stored_at) &&
	          get_u64(root, "size", &img->size) && parse_layers(root, img);
	img->stored_at = (int64_t)stored_at;
	return ok && strcmp(img->id, img->config_digest) == 0;
}

int record_load(struct husk_store *s, const char *id, struct husk_image *img,
                struct husk_error *err)
{
	memset(img, 0, sizeof(*img));
	char name[HUSK_DIGEST_MAX + 8];
	record_name(id, name);
	char *text;
	size_t len;
	int rc = store_read_file(s->images_fd, name, &text, &len, err);
	if (rc == -ENOENT)
		return husk_err(err, ENOENT, "no such image: %s", id);
	if (rc < 0)
		return rc;
	json_object *root = json_tokener_parse(text);
	free(text);
	bool ok = root && parse_record(root, img) && strcmp(img->id, id) == 0;
	json_object_put(root);
	if (!ok) {
		husk_image_free(img);
		return husk_err(err, EUCLEAN,
		                "image record %s/images/%s is "
		                "corrupt",
		                s->root, name);
	}
	return 0;
}

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static json_object *layer_json(const struct husk_image_layer *l)
{
	json_object *o = json_object_new_object();
	add_str(o, "digest", l->digest);
	add_str(o, "diff_id", l->diff_id);
	json_object_object_add(o, "size",
	                       json_object_new_int64((int64_t)l->size));
	add_str(o, "media_type", l->media_type);
	return o;
}

static json_object *record_json(const struct husk_image *img)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "schema", json_object_new_int(RECORD_SCHEMA));
	add_str(o, "id", img->id);
	add_str(o, "config_digest", img->config_digest);
	add_str(o, "manifest_digest", img->manifest_digest);
	add_str(o, "os", img->os);
	add_str(o, "architecture", img->architecture);
	add_str(o, "variant", img->variant);
	add_str(o, "created", img->created);
	json_object_object_add(o, "stored_at",
	                       json_object_new_int64(img->stored_at));
	json_object_object_add(o, "size",
	                       json_object_new_int64((int64_t)img->size));
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < img->n_layers; i++)
		json_object_array_add(arr, layer_json(&img->layers[i]));
	json_object_object_add(o, "layers", arr);
	return o;
}

int record_save(struct husk_store *s, const struct husk_image *img,
                struct husk_error *err)
{
	json_object *o = record_json(img);
	const char *text =
	    o ? json_object_to_json_string_ext(
	            o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
	      : NULL;
	int rc;
	if (!text) {
		rc = husk_err(err, ENOMEM, "image record: out of memory");
	} else {
		char name[HUSK_DIGEST_MAX + 8];
		record_name(img->id, name);
		rc = store_write_atomic(s, s->images_fd, name, text,
		                        strlen(text), err);
	}
	json_object_put(o);
	return rc;
}

int record_delete(struct husk_store *s, const char *id, struct husk_error *err)
{
	char name[HUSK_DIGEST_MAX + 8];
	record_name(id, name);
	if (unlinkat(s->images_fd, name, 0) < 0 && errno != ENOENT)
		return husk_err_errno(err, errno, "delete image %s", id);
	fsync(s->images_fd);
	/* Its refs/ directory is empty (no users), or missing. */
	unlinkat(s->refs_fd, husk_digest_hex(id), AT_REMOVEDIR);
	return 0;
}

bool record_exists(struct husk_store *s, const char *id)
{
	char name[HUSK_DIGEST_MAX + 8];
	record_name(id, name);
	return husk_digest_valid(id) &&
	       faccessat(s->images_fd, name, F_OK, 0) == 0;
}

/* Calls fn with each entry name of dirfd not starting with '.'. */
static int each_entry(int dirfd, int (*fn)(const char *name, void *ctx),
                      void *ctx)
{
	int dup_fd = dup(dirfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		int e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return -e;
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)))
		if (e->d_name[0] != '.')
			rc = fn(e->d_name, ctx);
	closedir(d);
	return rc;
}

static int add_record_id(const char *name, void *ctx)
{
	char id[HUSK_DIGEST_MAX + 8];
	size_t n = strlen(name);
	/* Anything but <64 hex>.json is not a record; check reports it. */
	if (n != HUSK_DIGEST_HEX + 5 || strcmp(name + HUSK_DIGEST_HEX, ".json"))
		return 0;
	snprintf(id, sizeof(id), "sha256:%.*s", HUSK_DIGEST_HEX, name);
	return husk_digest_valid(id) ? dset_add(ctx, id) : 0;
}

int record_ids(struct husk_store *s, struct dset *ids, struct husk_error *err)
{
	int rc = each_entry(s->images_fd, add_record_id, ids);
	if (rc < 0)
		return husk_err_errno(err, -rc, "read %s/images", s->root);
	return 0;
}

struct users_ctx {
	size_t n;
	char *first;
};

static int count_user(const char *name, void *ctx)
{
	struct users_ctx *u = ctx;
	if (u->n++ == 0 && u->first)
		snprintf(u->first, 129, "%s", name);
	return 0;
}

size_t users_count(struct husk_store *s, const char *id, char *first)
{
	struct users_ctx u = {.first = first};
	if (first)
		*first = '\0';
	int fd = openat(s->refs_fd, husk_digest_hex(id),
	                O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	each_entry(fd, count_user, &u);
	close(fd);
	return u.n;
}

int store_image_load(struct husk_store *s, const struct repos *r,
                     const char *id, struct husk_image *img,
                     struct husk_error *err)
{
	int rc = record_load(s, id, img, err);
	if (rc == 0 && repos_refs_of(r, img) < 0)
		rc = husk_err(err, ENOMEM, "out of memory");
	if (rc == 0)
		img->n_users = users_count(s, id, NULL);
	if (rc < 0)
		husk_image_free(img);
	return rc;
}
