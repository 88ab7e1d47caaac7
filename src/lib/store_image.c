/* Finding images: by id, id prefix or reference; and listing them. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one image whose id starts with hex; ENOENT or ambiguous EINVAL. */
static int find_prefix(struct husk_store *s, const char *what, const char *hex,
                       struct resolved *res, struct husk_error *err)
{
	struct dset ids = {0};
	int rc = record_ids(s, &ids, err);
	size_t matches = 0, n = strlen(hex);
	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		if (strncmp(husk_digest_hex(ids.v[i]), hex, n) != 0)
			continue;
		if (matches++ == 0)
			memcpy(res->id, ids.v[i], sizeof(res->id));
	}
	dset_free(&ids);
	if (rc < 0)
		return rc;
	if (matches == 0)
		return husk_err(err, ENOENT, "no such image: %s", what);
	if (matches > 1)
		return husk_err(err, EINVAL,
		                "image id prefix %s is ambiguous: %zu images "
		                "match",
		                what, matches);
	return 0;
}

int store_resolve(struct husk_store *s, struct repos *r, const char *what,
                  struct resolved *res, struct husk_error *err)
{
	memset(res, 0, sizeof(*res));
	if (!what || !*what)
		return husk_err(err, EINVAL, "empty image name");
	if (strncmp(what, "sha256:", 7) == 0) {
		if (!husk_hex_prefix_valid(what + 7))
			return husk_err(err, EINVAL, "invalid image id '%s'",
			                what);
		return find_prefix(s, what, what + 7, res, err);
	}
	struct husk_ref ref;
	struct husk_error perr = {0};
	int prc = husk_ref_parse(what, &ref, &perr);
	if (prc == 0) {
		/* name:tag@digest: the digest decides, as in Docker; only
		 * name:tag and name@digest are stored. */
		if (*ref.digest)
			ref.tag[0] = '\0';
		husk_ref_string(&ref, res->ref, sizeof(res->ref));
		struct repo_entry *e = repos_find(r, res->ref);
		if (e) {
			memcpy(res->id, e->id, sizeof(res->id));
			return 0;
		}
		res->ref[0] = '\0';
	}
	/* As in Docker, a name that is not a known reference may still be
	 * a short id such as `docker images` prints. */
	if (husk_hex_prefix_valid(what))
		return find_prefix(s, what, what, res, err);
	if (prc < 0) {
		if (err)
			*err = perr;
		return prc;
	}
	return husk_err(err, ENOENT, "no such image: %s", what);
}

int husk_store_image_get(struct husk_store *s, const char *what,
                         struct husk_image *img, struct husk_error *err)
{
	memset(img, 0, sizeof(*img));
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	struct repos r;
	struct resolved res;
	rc = repos_load(s, &r, err);
	if (rc == 0)
		rc = store_resolve(s, &r, what, &res, err);
	if (rc == 0)
		rc = store_image_load(s, &r, res.id, img, err);
	store_unlock(s);
	repos_free(&r);
	return rc;
}

struct image_list {
	struct husk_image *v;
	size_t n;
};

static void image_list_free(struct image_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		husk_image_free(&l->v[i]);
	free(l->v);
}

/* Loads every record; a corrupt one is skipped (husk_store_check names
 * it) so that one bad file does not hide every image. */
static int load_all(struct husk_store *s, struct image_list *l,
                    struct husk_error *err)
{
	struct repos r;
	struct dset ids = {0};
	int rc = repos_load(s, &r, err);
	if (rc == 0)
		rc = record_ids(s, &ids, err);
	l->v = rc == 0 && ids.n ? calloc(ids.n, sizeof(l->v[0])) : NULL;
	if (rc == 0 && ids.n && !l->v)
		rc = husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		struct husk_error e = {0};
		int one = store_image_load(s, &r, ids.v[i], &l->v[l->n], &e);
		if (one == 0)
			l->n++;
		else if (one != -EUCLEAN && one != -ENOENT)
			rc = husk_err(err, -one, "%s", e.msg);
	}
	dset_free(&ids);
	repos_free(&r);
	return rc;
}

static int newest_first(const void *a, const void *b)
{
	const struct husk_image *x = a, *y = b;
	if (x->stored_at != y->stored_at)
		return x->stored_at > y->stored_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

int husk_store_image_list(struct husk_store *s, husk_image_fn fn, void *ctx,
                          struct husk_error *err)
{
	struct image_list l = {0};
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	rc = load_all(s, &l, err);
	/* The callback runs unlocked: it may be slow, or use the store. */
	store_unlock(s);
	if (rc == 0 && l.n)
		qsort(l.v, l.n, sizeof(l.v[0]), newest_first);
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = fn(&l.v[i], ctx);
	image_list_free(&l);
	return rc;
}
