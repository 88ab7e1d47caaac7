/* `husk rmi` and `husk image prune`, with Docker's rules, under the
 * global lock. Changes are made in memory, written (references first,
 * then records) and only then reported, so a failure reports nothing. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct event {
	enum husk_rmi_event ev;
	char what[HUSK_REF_STRING_MAX];
};

struct events {
	struct event *v;
	size_t n, cap;
};

static int event_add(struct events *e, enum husk_rmi_event ev, const char *what)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		void *v = realloc(e->v, cap * sizeof(e->v[0]));
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n].ev = ev;
	snprintf(e->v[e->n].what, sizeof(e->v[0].what), "%s", what);
	e->n++;
	return 0;
}

static void events_emit(struct events *e, husk_rmi_fn fn, void *ctx)
{
	for (size_t i = 0; fn && i < e->n; i++)
		fn(e->v[i].ev, e->v[i].what, ctx);
	free(e->v);
}

/* The familiar form of a stored reference, for messages and events. */
static void familiar(const char *key, char *out, size_t cap)
{
	struct husk_ref ref;
	if (husk_ref_parse(key, &ref, NULL) < 0 ||
	    husk_ref_familiar(&ref, out, cap) < 0)
		snprintf(out, cap, "%s", key);
}

static void short_id(const char *id, char out[13])
{
	snprintf(out, 13, "%.12s", husk_digest_hex(id));
}

static int untag(struct repos *r, const char *key, struct events *ev)
{
	char name[HUSK_REF_STRING_MAX];
	familiar(key, name, sizeof(name));
	repos_remove(r, key);
	return event_add(ev, HUSK_RMI_UNTAGGED, name);
}

/* Parses a stored key into its repository name and whether it is a tag. */
static bool key_name(const char *key, char *name, size_t cap, bool *is_tag)
{
	struct husk_ref ref;
	if (husk_ref_parse(key, &ref, NULL) < 0)
		return false;
	*is_tag = !*ref.digest;
	return husk_ref_name(&ref, name, cap) >= 0;
}

/* Docker: once a repository's last tag for an image is gone, its digest
 * references to that image go too. */
static int untag_orphan_digests(struct repos *r, const char *id,
                                const char *repo, struct events *ev)
{
	char name[HUSK_REF_STRING_MAX];
	bool is_tag;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->e[i].id, id) &&
		    key_name(r->e[i].ref, name, sizeof(name), &is_tag) &&
		    !strcmp(name, repo) && is_tag)
			return 0;
	for (size_t i = 0; i < r->n;) {
		if (strcmp(r->e[i].id, id) != 0 ||
		    !key_name(r->e[i].ref, name, sizeof(name), &is_tag) ||
		    strcmp(name, repo) != 0) {
			i++;
			continue;
		}
		char key[HUSK_REF_STRING_MAX];
		snprintf(key, sizeof(key), "%s", r->e[i].ref);
		if (untag(r, key, ev) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int untag_all(struct repos *r, const char *id, struct events *ev)
{
	for (size_t i = 0; i < r->n;) {
		if (strcmp(r->e[i].id, id) != 0) {
			i++;
			continue;
		}
		char key[HUSK_REF_STRING_MAX];
		snprintf(key, sizeof(key), "%s", r->e[i].ref);
		if (untag(r, key, ev) < 0)
			return -ENOMEM;
	}
	return 0;
}

static size_t repositories_of(const struct repos *r, const char *id)
{
	char names[2][HUSK_REF_STRING_MAX];
	size_t n = 0;
	bool is_tag;
	for (size_t i = 0; i < r->n && n < 2; i++)
		if (!strcmp(r->e[i].id, id) &&
		    key_name(r->e[i].ref, names[n], sizeof(names[0]),
		             &is_tag) &&
		    (n == 0 || strcmp(names[0], names[n]) != 0))
			n++;
	return n;
}

struct rmi {
	struct husk_store *s;
	struct repos r;
	struct resolved res;
	char user[129];
	size_t users;
	bool force, delete_image;
	struct events ev;
};

static int by_reference(struct rmi *m, struct husk_error *err)
{
	char name[HUSK_REF_STRING_MAX], id[13];
	bool is_tag = false;
	/* Done in memory first: whether it is allowed depends on what is
	 * left, and nothing is written when it is not. */
	if (!key_name(m->res.ref, name, sizeof(name), &is_tag) ||
	    untag(&m->r, m->res.ref, &m->ev) < 0 ||
	    (is_tag &&
	     untag_orphan_digests(&m->r, m->res.id, name, &m->ev) < 0))
		return husk_err(err, ENOMEM, "out of memory");
	bool last = repos_count_for(&m->r, m->res.id) == 0;
	if (last && m->users && !m->force) {
		familiar(m->res.ref, name, sizeof(name));
		short_id(m->res.id, id);
		return husk_err(err, EBUSY,
		                "unable to remove repository reference %s "
		                "(must force): image %s is being used by "
		                "container %s",
		                name, id, m->user);
	}
	m->delete_image = last && !m->users;
	return 0;
}

static int by_id(struct rmi *m, struct husk_error *err)
{
	char id[13];
	short_id(m->res.id, id);
	if (m->users && !m->force)
		return husk_err(
		    err, EBUSY,
		    "unable to delete %s (must be forced): image is "
		    "being used by container %s",
		    id, m->user);
	if (!m->users && !m->force && repositories_of(&m->r, m->res.id) > 1)
		return husk_err(
		    err, EBUSY,
		    "unable to delete %s (must be forced): image is "
		    "referenced in multiple repositories",
		    id);
	if (untag_all(&m->r, m->res.id, &m->ev) < 0)
		return husk_err(err, ENOMEM, "out of memory");
	/* Forced with users: only the references go; the image stays. */
	m->delete_image = !m->users;
	return 0;
}

static int remove_locked(struct rmi *m, const char *what,
                         struct husk_error *err)
{
	int rc = repos_load(m->s, &m->r, err);
	if (rc == 0)
		rc = store_resolve(m->s, &m->r, what, &m->res, err);
	if (rc < 0)
		return rc;
	m->users = users_count(m->s, m->res.id, m->user);
	rc = *m->res.ref ? by_reference(m, err) : by_id(m, err);
	if (rc == 0 && m->ev.n)
		rc = repos_save(m->s, &m->r, err);
	if (rc == 0 && m->delete_image) {
		rc = record_delete(m->s, m->res.id, err);
		if (rc == 0)
			event_add(&m->ev, HUSK_RMI_DELETED, m->res.id);
		/* The image is gone either way; leftover blobs are for the
		 * next prune, so a GC problem does not fail the rmi. */
		struct husk_prune_result gc = {0};
		if (rc == 0)
			store_gc(m->s, &gc, NULL);
	}
	return rc;
}

int husk_store_image_remove(struct husk_store *s, const char *what, bool force,
                            husk_rmi_fn fn, void *ctx, struct husk_error *err)
{
	struct rmi m = {.s = s, .force = force};
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	rc = remove_locked(&m, what, err);
	store_unlock(s);
	repos_free(&m.r);
	if (rc < 0)
		m.ev.n = 0;
	events_emit(&m.ev, fn, ctx);
	return rc;
}

static int prune_images(struct husk_store *s, struct events *ev,
                        struct husk_prune_result *res, struct husk_error *err)
{
	struct repos r;
	struct dset ids = {0};
	int rc = repos_load(s, &r, err);
	if (rc == 0)
		rc = record_ids(s, &ids, err);
	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		if (repos_count_for(&r, ids.v[i]) ||
		    users_count(s, ids.v[i], NULL))
			continue;
		rc = record_delete(s, ids.v[i], err);
		if (rc == 0) {
			event_add(ev, HUSK_RMI_DELETED, ids.v[i]);
			res->images_deleted++;
		}
	}
	dset_free(&ids);
	repos_free(&r);
	return rc;
}

int husk_store_prune(struct husk_store *s, husk_rmi_fn fn, void *ctx,
                     struct husk_prune_result *res, struct husk_error *err)
{
	struct husk_prune_result local = {0};
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	struct events ev = {0};
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	rc = prune_images(s, &ev, res, err);
	if (rc == 0)
		rc = store_gc(s, res, err);
	if (rc == 0) {
		/* Downloads nobody resumes now, and crashed writers' files. */
		store_clean_unlocked(s->partial_fd, NULL);
		store_clean_unlocked(s->tmp_fd, NULL);
	}
	store_unlock(s);
	/* Images already deleted are reported even when GC failed after. */
	events_emit(&ev, fn, ctx);
	return rc;
}
