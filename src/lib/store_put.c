/* Recording an image: husk_store_image_put and husk_store_image_tag. */
#include "store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int check_spec(const struct husk_image_spec *spec,
                      struct husk_error *err)
{
	if (!husk_digest_valid(spec->config_digest))
		return husk_err(err, EINVAL, "invalid config digest '%s'",
		                spec->config_digest ? spec->config_digest
		                                    : "(null)");
	if (spec->manifest_digest && *spec->manifest_digest &&
	    !husk_digest_valid(spec->manifest_digest))
		return husk_err(err, EINVAL, "invalid manifest digest '%s'",
		                spec->manifest_digest);
	if (spec->n_layers > STORE_MAX_LAYERS ||
	    (spec->n_layers && !spec->layers))
		return husk_err(err, EINVAL, "invalid layer list (%zu layers)",
		                spec->n_layers);
	for (size_t i = 0; i < spec->n_layers; i++)
		if (!husk_digest_valid(spec->layers[i].digest))
			return husk_err(err, EINVAL,
			                "invalid digest '%s' of layer %zu",
			                spec->layers[i].digest, i);
	return 0;
}

/* Builds the record from the spec and the image config blob. */
static int build_record(struct husk_store *s,
                        const struct husk_image_spec *spec,
                        struct husk_image *img, struct husk_error *err)
{
	char *text;
	size_t len;
	int rc = husk_store_blob_read(s, spec->config_digest, STORE_META_MAX,
	                              &text, &len, err);
	if (rc < 0)
		return rc;
	struct husk_image_config cfg;
	rc = husk_image_config_parse(text, len, &cfg, err);
	free(text);
	if (rc < 0)
		return rc;
	if (cfg.n_diff_ids != spec->n_layers) {
		rc = husk_err(err, EINVAL,
		              "image config %s lists %zu diff_ids for %zu "
		              "layers",
		              spec->config_digest, cfg.n_diff_ids,
		              spec->n_layers);
		husk_image_config_free(&cfg);
		return rc;
	}
	memset(img, 0, sizeof(*img));
	snprintf(img->id, sizeof(img->id), "%s", spec->config_digest);
	memcpy(img->config_digest, img->id, sizeof(img->id));
	snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s",
	         spec->manifest_digest ? spec->manifest_digest : "");
	memcpy(img->os, cfg.os, sizeof(img->os));
	memcpy(img->architecture, cfg.architecture, sizeof(img->architecture));
	memcpy(img->variant, cfg.variant, sizeof(img->variant));
	memcpy(img->created, cfg.created, sizeof(img->created));
	img->size = len;
	img->layers = spec->n_layers
	                  ? calloc(spec->n_layers, sizeof(img->layers[0]))
	                  : NULL;
	if (spec->n_layers && !img->layers)
		rc = husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < spec->n_layers; i++) {
		struct husk_image_layer *l = &img->layers[i];
		memcpy(l->digest, spec->layers[i].digest, sizeof(l->digest));
		snprintf(l->diff_id, sizeof(l->diff_id), "%s", cfg.diff_ids[i]);
		l->size = spec->layers[i].size;
		snprintf(l->media_type, sizeof(l->media_type), "%s",
		         spec->layers[i].media_type);
		img->size += l->size;
	}
	img->n_layers = spec->n_layers;
	husk_image_config_free(&cfg);
	return rc;
}

/* Under the lock: the blobs must still be there (GC may have run since
 * they were written, unless they were held). */
static int check_blobs(struct husk_store *s, const struct husk_image *img,
                       struct husk_error *err)
{
	if (!husk_store_blob_has(s, img->config_digest))
		return husk_err(err, ENOENT,
		                "config blob %s is not in the "
		                "store",
		                img->config_digest);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct husk_image_layer *l = &img->layers[i];
		struct stat st;
		if (fstatat(s->blobs_fd, husk_digest_hex(l->digest), &st, 0) <
		    0)
			return husk_err(err, ENOENT,
			                "layer blob %s is not in the store",
			                l->digest);
		if ((uint64_t)st.st_size != l->size)
			return husk_err(err, EBADMSG,
			                "layer blob %s has %lld bytes, the "
			                "manifest says %" PRIu64,
			                l->digest, (long long)st.st_size,
			                l->size);
	}
	return 0;
}

/* Points name's tag and digests at id. */
static int set_refs(struct repos *r, const struct husk_ref *name,
                    const char *manifest, const char *id)
{
	struct husk_ref one = *name;
	char key[HUSK_REF_STRING_MAX];
	int rc = 0;
	if (*name->tag) {
		one.digest[0] = '\0';
		husk_ref_string(&one, key, sizeof(key));
		rc = repos_set(r, key, id);
	}
	const char *digests[] = {name->digest, manifest};
	for (size_t i = 0; rc == 0 && i < 2; i++) {
		if (!*digests[i])
			continue;
		one.tag[0] = '\0';
		snprintf(one.digest, sizeof(one.digest), "%s", digests[i]);
		husk_ref_string(&one, key, sizeof(key));
		rc = repos_set(r, key, id);
	}
	return rc;
}

static int drop_holds(struct husk_store *s, const struct husk_image *img,
                      struct husk_error *err)
{
	struct dset done = {0};
	int rc = dset_add(&done, img->config_digest);
	if (rc == 0 && *img->manifest_digest)
		rc = dset_add(&done, img->manifest_digest);
	for (size_t i = 0; rc == 0 && i < img->n_layers; i++)
		rc = dset_add(&done, img->layers[i].digest);
	rc = rc < 0 ? husk_err(err, ENOMEM, "out of memory")
	            : store_lease_drop(s, &done, err);
	dset_free(&done);
	return rc;
}

/* Writes the record, then the references; undoes the record when the
 * references cannot be written, so the store stays as it was. */
static int put_locked(struct husk_store *s, const struct husk_ref *name,
                      struct husk_image *img, struct repos *r,
                      struct husk_error *err)
{
	int rc = check_blobs(s, img, err);
	if (rc == 0)
		rc = repos_load(s, r, err);
	if (rc < 0)
		return rc;
	struct husk_image old;
	bool had_old = record_load(s, img->id, &old, NULL) == 0;
	img->stored_at = had_old ? old.stored_at : (int64_t)time(NULL);
	rc = record_save(s, img, err);
	if (rc == 0 && name) {
		if (set_refs(r, name, img->manifest_digest, img->id) < 0)
			rc = husk_err(err, ENOMEM, "out of memory");
		if (rc == 0)
			rc = repos_save(s, r, err);
		if (rc < 0 && had_old)
			record_save(s, &old, NULL);
		else if (rc < 0)
			record_delete(s, img->id, NULL);
	}
	if (had_old)
		husk_image_free(&old);
	/* The record now protects the blobs; a failure here costs nothing
	 * but a lease entry that lives until close. */
	if (rc == 0)
		drop_holds(s, img, NULL);
	return rc;
}

int husk_store_image_put(struct husk_store *s, const struct husk_ref *name,
                         const struct husk_image_spec *spec,
                         struct husk_image *out, struct husk_error *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct husk_image img;
	int rc = check_spec(spec, err);
	if (rc == 0)
		rc = build_record(s, spec, &img, err);
	if (rc < 0)
		return rc;
	rc = store_lock(s, err);
	if (rc < 0) {
		husk_image_free(&img);
		return rc;
	}
	struct repos r = {0};
	rc = put_locked(s, name, &img, &r, err);
	if (rc == 0 && out)
		rc = store_image_load(s, &r, img.id, out, err);
	store_unlock(s);
	repos_free(&r);
	husk_image_free(&img);
	return rc;
}

int husk_store_image_tag(struct husk_store *s, const char *what,
                         const struct husk_ref *name, struct husk_error *err)
{
	if (*name->digest)
		return husk_err(err, EINVAL,
		                "refusing to create a tag with a digest "
		                "reference");
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	struct repos r;
	struct resolved res;
	rc = repos_load(s, &r, err);
	if (rc == 0)
		rc = store_resolve(s, &r, what, &res, err);
	if (rc == 0 && set_refs(&r, name, "", res.id) < 0)
		rc = husk_err(err, ENOMEM, "out of memory");
	if (rc == 0)
		rc = repos_save(s, &r, err);
	store_unlock(s);
	repos_free(&r);
	return rc;
}
