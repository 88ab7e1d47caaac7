/* Layer entry names, and the set of paths one layer wrote.
 *
 * Names are cleaned lexically, as Docker's filepath.Clean does, before
 * the kernel resolves anything: a `..` is settled against the name itself,
 * so `a/../../x` is refused here and never reaches openat2. */
#include "layer_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int layer_clean_path(const char *name, char *out, size_t cap)
{
	size_t len = 0;
	const char *p = name;

	if (cap == 0)
		return -ENAMETOOLONG;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* empty or `.`: nothing to add */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (len == 0)
				return -EINVAL;
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the `/` before the dropped part */
		} else {
			size_t need = len + (len > 0) + n;
			if (need + 1 > cap)
				return -ENAMETOOLONG;
			if (len > 0)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = end;
	}
	out[len] = '\0';
	return 0;
}

int layer_split(const char *path, char *dir, size_t cap, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*base = slash ? slash + 1 : path;
	return 0;
}

/* FNV-1a: short keys, no adversary gains much from collisions here
 * beyond slowing its own layer down. */
static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding s[0..n), or the empty slot where it would go. */
static size_t find(const struct layer_set *s, const char *p, size_t n)
{
	size_t i = hash(p, n) & (s->cap - 1);
	while (s->slot[i] &&
	       (strncmp(s->slot[i], p, n) != 0 || s->slot[i][n] != '\0'))
		i = (i + 1) & (s->cap - 1);
	return i;
}

static int grow(struct layer_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 256;
	char **slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	struct layer_set bigger = {.slot = slot, .cap = cap, .used = s->used};
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i])
			slot[find(&bigger, s->slot[i], strlen(s->slot[i]))] =
			    s->slot[i];
	free(s->slot);
	*s = bigger;
	return 0;
}

/* Adds s[0..n); 1 when added, 0 when already there, -ENOMEM. */
static int add_one(struct layer_set *s, const char *p, size_t n)
{
	if ((s->used + 1) * 2 > s->cap) {
		int rc = grow(s);
		if (rc < 0)
			return rc;
	}
	size_t i = find(s, p, n);
	if (s->slot[i])
		return 0;
	s->slot[i] = strndup(p, n);
	if (!s->slot[i])
		return -ENOMEM;
	s->used++;
	return 1;
}

int layer_set_add(struct layer_set *s, const char *path)
{
	size_t n = strlen(path);
	/* Parents go in with every path, so a path already present means
	 * its parents are too, and the walk up can stop there. */
	while (n > 0) {
		int rc = add_one(s, path, n);
		if (rc <= 0)
			return rc;
		while (n > 0 && path[n - 1] != '/')
			n--;
		if (n > 0)
			n--;
	}
	return 0;
}

bool layer_set_has(const struct layer_set *s, const char *path)
{
	if (s->cap == 0)
		return false;
	return s->slot[find(s, path, strlen(path))] != NULL;
}

void layer_set_free(struct layer_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	*s = (struct layer_set){0};
}
