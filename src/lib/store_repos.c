/* repositories.json: every reference (tag or digest) and the image id it
 * points to, kept sorted so the file is stable and diffable:
 *
 *   {"references": {"docker.io/library/busybox:latest": "sha256:..."}}
 *
 * Read and written only under the global lock; written atomically. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define REPOS_FILE "repositories.json"

void repos_free(struct repos *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i].ref);
	free(r->e);
	memset(r, 0, sizeof(*r));
}

/* Index of ref, or where it would go (sets *found). */
static size_t repos_index(const struct repos *r, const char *ref, bool *found)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->e[mid].ref, ref);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct repo_entry *repos_find(struct repos *r, const char *ref)
{
	bool found;
	size_t i = repos_index(r, ref, &found);
	return found ? &r->e[i] : NULL;
}

int repos_set(struct repos *r, const char *ref, const char *id)
{
	bool found;
	size_t i = repos_index(r, ref, &found);
	if (found) {
		snprintf(r->e[i].id, sizeof(r->e[i].id), "%s", id);
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		void *e = realloc(r->e, cap * sizeof(r->e[0]));
		if (!e)
			return -ENOMEM;
		r->e = e;
		r->cap = cap;
	}
	char *copy = strdup(ref);
	if (!copy)
		return -ENOMEM;
	memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof(r->e[0]));
	r->e[i].ref = copy;
	snprintf(r->e[i].id, sizeof(r->e[i].id), "%s", id);
	r->n++;
	return 0;
}

void repos_remove(struct repos *r, const char *ref)
{
	bool found;
	size_t i = repos_index(r, ref, &found);
	if (!found)
		return;
	free(r->e[i].ref);
	memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(r->e[0]));
	r->n--;
}

size_t repos_count_for(const struct repos *r, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += strcmp(r->e[i].id, id) == 0;
	return n;
}

int repos_refs_of(const struct repos *r, struct husk_image *img)
{
	size_t n = repos_count_for(r, img->id);
	img->refs = n ? calloc(n, sizeof(char *)) : NULL;
	if (n && !img->refs)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->e[i].id, img->id) != 0)
			continue;
		img->refs[img->n_refs] = strdup(r->e[i].ref);
		if (!img->refs[img->n_refs])
			return -ENOMEM;
		img->n_refs++;
	}
	return 0;
}

static int repos_parse(const char *text, struct repos *r,
                       struct husk_error *err)
{
	json_object *root = json_tokener_parse(text);
	json_object *refs = NULL;
	int rc = 0;
	if (!root || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "references", &refs) ||
	    !json_object_is_type(refs, json_type_object))
		rc = -EUCLEAN;
	if (rc == 0) {
		json_object_object_foreach(refs, key, val)
		{
			const char *id = json_object_get_string(val);
			if (!json_object_is_type(val, json_type_string) ||
			    !husk_digest_valid(id)) {
				rc = -EUCLEAN;
				break;
			}
			if (repos_set(r, key, id) < 0) {
				rc = husk_err(err, ENOMEM, "out of memory");
				break;
			}
		}
	}
	json_object_put(root);
	if (rc == -EUCLEAN)
		rc = husk_err(err, EUCLEAN, "%s is corrupt", REPOS_FILE);
	return rc;
}

int repos_load(struct husk_store *s, struct repos *r, struct husk_error *err)
{
	memset(r, 0, sizeof(*r));
	char *text;
	size_t len;
	int rc = store_read_file(s->root_fd, REPOS_FILE, &text, &len, err);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = repos_parse(text, r, err);
	free(text);
	if (rc < 0)
		repos_free(r);
	return rc;
}

int repos_save(struct husk_store *s, const struct repos *r,
               struct husk_error *err)
{
	json_object *root = json_object_new_object();
	json_object *refs = json_object_new_object();
	int rc = root && refs ? 0 : -ENOMEM;
	if (rc == 0)
		json_object_object_add(root, "references", refs);
	else
		json_object_put(refs);
	for (size_t i = 0; rc == 0 && i < r->n; i++)
		if (json_object_object_add(refs, r->e[i].ref,
		                           json_object_new_string(r->e[i].id)))
			rc = -ENOMEM;
	const char *text = rc == 0
	                       ? json_object_to_json_string_ext(
	                             root, JSON_C_TO_STRING_PRETTY |
	                                       JSON_C_TO_STRING_NOSLASHESCAPE)
	                       : NULL;
	if (text)
		rc = store_write_atomic(s, s->root_fd, REPOS_FILE, text,
		                        strlen(text), err);
	else
		rc = husk_err(err, ENOMEM, "%s: out of memory", REPOS_FILE);
	json_object_put(root);
	return rc;
}
