/* husk_pull: reference -> registry -> manifest (through an index when
 * there is one) -> config -> layers -> image record, each step checked
 * before the next costs anything: the config (small) comes before the
 * layers, so a wrong platform or a config that does not fit the manifest
 * fails before megabytes are fetched. */
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pull {
	struct husk_store *s;
	const struct husk_pull_opts *o;
	struct husk_ref ref;
	struct reg_platform platform;
	bool platform_given;
	struct reg_client c;
	char top_digest[HUSK_DIGEST_MAX]; /* what the reference names */
	bool from_index;
	struct reg_manifest m;
};

/* A 401 hint when the pull had no credentials to offer. */
static const char *auth_hint(const struct reg_client *c)
{
	return c->user ? NULL
	               : "(no credentials for this registry: husk login)";
}

/* GETs the manifest named reference (tag or digest) into r, retrying once
 * with a fresh token after a 401. */
static int get_manifest(struct pull *p, const char *reference,
                        struct reg_resp *r, struct husk_error *err)
{
	char path[600], what[400];
	snprintf(path, sizeof(path), "/v2/%s/manifests/%s", p->c.repo,
	         reference);
	snprintf(what, sizeof(what), "manifest %s", reference);
	for (;;) {
		int rc = reg_get_registry(&p->c, path, reg_manifest_accept, r,
		                          what, err);
		if (rc == -EMSGSIZE)
			return husk_err(err, EMSGSIZE,
			                "manifest %s is larger than %u MiB, "
			                "refused",
			                reference, HUSK_MANIFEST_MAX >> 20);
		if (rc < 0 || r->status != 401)
			break;
		rc = reg_reauthenticate(&p->c, err);
		if (rc <= 0)
			break;
	}
	if (r->status != 200)
		return reg_status_error(
		    r, what, r->status == 401 ? auth_hint(&p->c) : NULL, err);
	return 0;
}

/* Checks the manifest's bytes against the digest it was asked by (or
 * the index's descriptor), and the registry's own claim. */
static int check_manifest(const struct reg_resp *r, const char *want,
                          int64_t want_size, char digest[HUSK_DIGEST_MAX],
                          struct husk_error *err)
{
	int rc = husk_sha256_buf(r->body ? r->body : "", r->len, digest, err);
	if (rc < 0)
		return rc;
	if (want && strcmp(want, digest) != 0)
		return husk_err(
		    err, EBADMSG,
		    "manifest digest mismatch: asked for %s, got %s", want,
		    digest);
	if (want_size >= 0 && (uint64_t)want_size != r->len)
		return husk_err(err, EBADMSG,
		                "manifest %s: %zu bytes, the index says %lld",
		                digest, r->len, (long long)want_size);
	if (husk_digest_valid(r->digest) && strcmp(r->digest, digest) != 0)
		return husk_err(err, EBADMSG,
		                "manifest digest mismatch: the registry says "
		                "%s, the content is %s",
		                r->digest, digest);
	return 0;
}

/* Fetches and decodes a manifest; *root is the caller's. */
static int fetch_doc(struct pull *p, const char *reference, const char *want,
                     int64_t want_size, char digest[HUSK_DIGEST_MAX],
                     enum reg_kind *kind, json_object **root,
                     struct husk_error *err)
{
	struct reg_resp r;
	reg_resp_init(&r, HUSK_MANIFEST_MAX, true);
	int rc = get_manifest(p, reference, &r, err);
	if (rc == 0)
		rc = check_manifest(&r, want, want_size, digest, err);
	if (rc == 0)
		rc = reg_manifest_decode(r.content_type, r.body ? r.body : "",
		                         r.len, kind, root, err);
	reg_resp_free(&r);
	return rc;
}

/* The image manifest: the reference's, or its index's entry for the
 * platform. */
static int resolve(struct pull *p, struct husk_error *err)
{
	const char *reference = p->ref.digest[0] ? p->ref.digest : p->ref.tag;
	enum reg_kind kind;
	json_object *root = NULL;
	int rc =
	    fetch_doc(p, reference, p->ref.digest[0] ? p->ref.digest : NULL, -1,
	              p->top_digest, &kind, &root, err);
	if (rc == 0 && kind == REG_KIND_INDEX) {
		struct reg_desc d;
		rc = reg_index_select(root, &p->platform, &d, err);
		json_object_put(root);
		root = NULL;
		char digest[HUSK_DIGEST_MAX];
		if (rc == 0)
			rc = fetch_doc(p, d.digest, d.digest, d.size, digest,
			               &kind, &root, err);
		if (rc == 0 && kind != REG_KIND_MANIFEST)
			rc = husk_err(err, EPROTONOSUPPORT,
			              "index entry %s is not an image manifest",
			              d.digest);
		p->from_index = true;
	}
	if (rc == 0)
		rc = reg_manifest_parse(root, &p->m, err);
	json_object_put(root);
	return rc;
}

/* The config, fetched alone: it must fit the manifest and the platform
 * before the layers are worth fetching. */
static int fetch_config(struct pull *p, struct husk_error *err)
{
	int rc = reg_fetch_blobs(&p->c, p->s, &p->m.config, 1, 1, err);
	if (rc < 0)
		return rc;
	char *text;
	size_t len;
	rc = husk_store_blob_read(p->s, p->m.config.digest, REG_CONFIG_MAX,
	                          &text, &len, err);
	if (rc < 0)
		return rc;
	struct husk_image_config cfg;
	rc = husk_image_config_parse(text, len, &cfg, err);
	free(text);
	if (rc < 0)
		return reg_err_prefix(err, rc, "image config");
	if (cfg.n_diff_ids != p->m.n_layers)
		rc = husk_err(err, EBADMSG,
		              "the manifest lists %zu layers, the config %zu",
		              p->m.n_layers, cfg.n_diff_ids);
	/* As docker pull --platform: a single-platform image must be the
	 * one asked for; without --platform, take what there is. */
	if (rc == 0 && p->platform_given && !p->from_index &&
	    !reg_platform_match(&p->platform, cfg.os, cfg.architecture,
	                        cfg.variant)) {
		char want[100];
		reg_platform_string(&p->platform, want, sizeof(want));
		rc = husk_err(err, ENOENT,
		              "the image is for %.31s/%.31s%s%.31s, not %s",
		              cfg.os, cfg.architecture, *cfg.variant ? "/" : "",
		              cfg.variant, want);
	}
	husk_image_config_free(&cfg);
	return rc;
}

static int record(struct pull *p, struct husk_image *out,
                  struct husk_error *err)
{
	struct husk_layer_desc *layers =
	    calloc(p->m.n_layers ? p->m.n_layers : 1, sizeof(*layers));
	if (!layers)
		return husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->m.n_layers; i++) {
		const struct reg_desc *d = &p->m.layers[i];
		memcpy(layers[i].digest, d->digest, sizeof(layers[i].digest));
		layers[i].size = (uint64_t)d->size;
		memcpy(layers[i].media_type, d->media_type,
		       sizeof(layers[i].media_type));
	}
	struct husk_image_spec spec = {
	    .config_digest = p->m.config.digest,
	    .manifest_digest = p->top_digest,
	    .layers = layers,
	    .n_layers = p->m.n_layers,
	};
	int rc = husk_store_image_put(p->s, &p->ref, &spec, out, err);
	free(layers);
	return rc;
}

static int pull_steps(struct pull *p, struct husk_image *out,
                      struct husk_error *err)
{
	const struct husk_pull_opts *o = p->o;
	const char *platform = o->platform && *o->platform
	                           ? o->platform
	                           : HUSK_PULL_DEFAULT_PLATFORM;
	p->platform_given = o->platform && *o->platform;
	int rc = reg_platform_parse(platform, &p->platform, err);
	if (rc == 0)
		rc = reg_client_init(&p->c, p->ref.registry,
		                     husk_ref_api_host(&p->ref),
		                     p->ref.repository, o, err);
	if (rc == 0)
		rc = reg_creds_lookup(o, p->ref.registry, &p->c.user,
		                      &p->c.pass, err);
	if (rc == 0)
		rc = reg_authenticate(&p->c, false, err);
	if (rc == 0)
		rc = resolve(p, err);
	if (rc == 0)
		rc = fetch_config(p, err);
	unsigned parallel =
	    o->parallel ? o->parallel : HUSK_PULL_DEFAULT_PARALLEL;
	if (parallel > HUSK_PULL_MAX_PARALLEL)
		parallel = HUSK_PULL_MAX_PARALLEL;
	if (rc == 0)
		rc = reg_fetch_blobs(&p->c, p->s, p->m.layers, p->m.n_layers,
		                     parallel, err);
	if (rc == 0)
		rc = record(p, out, err);
	return rc;
}

int husk_pull(struct husk_store *s, const char *ref,
              const struct husk_pull_opts *o, struct husk_image *out,
              struct husk_error *err)
{
	static const struct husk_pull_opts defaults;
	struct pull *p = calloc(1, sizeof(*p));
	if (!p)
		return husk_err(err, ENOMEM, "out of memory");
	p->s = s;
	p->o = o ? o : &defaults;
	int rc = husk_ref_parse(ref ? ref : "", &p->ref, err);
	if (rc == 0)
		rc = pull_steps(p, out, err);
	if (rc < 0) {
		/* Blobs fetched or held for nothing go back to GC. */
		husk_store_release(s, NULL);
		char name[HUSK_REF_STRING_MAX + 8];
		if (!p->ref.repository[0] ||
		    husk_ref_string(&p->ref, name, sizeof(name)) <= 0)
			snprintf(name, sizeof(name), "%.200s", ref ? ref : "");
		char prefix[sizeof(name) + 8];
		snprintf(prefix, sizeof(prefix), "pull %s", name);
		rc = reg_err_prefix(err, rc, prefix);
	}
	reg_manifest_free(&p->m);
	reg_client_free(&p->c);
	free(p);
	return rc;
}
