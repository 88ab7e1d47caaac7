/* husk_store_check: the whole store against its invariants, for tests
 * and a future `husk fsck`. It holds the global lock throughout, so what
 * it sees is one consistent state (and other writers wait). */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct check {
	struct husk_store *s;
	size_t problems;
	int code;
	char first[sizeof(((struct husk_error *)0)->msg)];
};

static void problem(struct check *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct check *c, int code, const char *fmt, ...)
{
	if (c->problems++ > 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->first, sizeof(c->first), fmt, ap);
	va_end(ap);
	c->code = code;
}

/* Calls fn(c, name) for each entry of dirfd not starting with '.'. */
static void each(struct check *c, int dirfd,
                 void (*fn)(struct check *c, const char *name))
{
	int dup_fd = dup(dirfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		problem(c, EIO, "cannot read a directory of %s", c->s->root);
		return;
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			fn(c, e->d_name);
	closedir(d);
}

static void check_blob(struct check *c, const char *name)
{
	char digest[HUSK_DIGEST_MAX];
	if (!store_digest_of_name(name, digest)) {
		problem(c, EUCLEAN, "unexpected file blobs/sha256/%s", name);
		return;
	}
	int fd;
	struct husk_error e = {0};
	if (husk_store_blob_open(c->s, digest, HUSK_SIZE_UNKNOWN, true, &fd,
	                         &e) < 0) {
		problem(c, e.code, "%s", e.msg);
		return;
	}
	close(fd);
}

static void check_layers(struct check *c, const struct husk_image *img,
                         const struct husk_image_config *cfg)
{
	if (cfg->n_diff_ids != img->n_layers)
		problem(c, EUCLEAN, "image %s: %zu layers, %zu diff_ids",
		        img->id, img->n_layers, cfg->n_diff_ids);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct husk_image_layer *l = &img->layers[i];
		struct stat st;
		if (fstatat(c->s->blobs_fd, husk_digest_hex(l->digest), &st,
		            0) < 0)
			problem(c, EUCLEAN, "image %s: layer blob %s missing",
			        img->id, l->digest);
		else if ((uint64_t)st.st_size != l->size)
			problem(c, EUCLEAN,
			        "image %s: layer %s has a wrong size", img->id,
			        l->digest);
		if (i < cfg->n_diff_ids && strcmp(cfg->diff_ids[i], l->diff_id))
			problem(c, EUCLEAN,
			        "image %s: diff_id %zu differs "
			        "from its config",
			        img->id, i);
	}
}

static void check_record(struct check *c, const char *name)
{
	char id[HUSK_DIGEST_MAX + 8];
	snprintf(id, sizeof(id), "sha256:%.*s", HUSK_DIGEST_HEX, name);
	if (strlen(name) != HUSK_DIGEST_HEX + 5 || !husk_digest_valid(id) ||
	    strcmp(name + HUSK_DIGEST_HEX, ".json") != 0) {
		problem(c, EUCLEAN, "unexpected file images/%s", name);
		return;
	}
	struct husk_image img;
	struct husk_image_config cfg;
	struct husk_error e = {0};
	if (record_load(c->s, id, &img, &e) < 0) {
		problem(c, EUCLEAN, "%s", e.msg);
		return;
	}
	if (husk_store_image_config(c->s, &img, &cfg, &e) < 0)
		problem(c, EUCLEAN, "image %s: %s", id, e.msg);
	else
		check_layers(c, &img, &cfg);
	husk_image_config_free(&cfg);
	husk_image_free(&img);
}

static void check_users_dir(struct check *c, const char *name)
{
	char id[HUSK_DIGEST_MAX];
	if (!store_digest_of_name(name, id) || !record_exists(c->s, id))
		problem(c, EUCLEAN, "refs/%s: containers use a missing image",
		        name);
}

static void check_repos(struct check *c)
{
	struct repos r;
	struct husk_error e = {0};
	if (repos_load(c->s, &r, &e) < 0) {
		problem(c, EUCLEAN, "%s", e.msg);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		struct husk_ref ref;
		char again[HUSK_REF_STRING_MAX];
		if (husk_ref_parse(r.e[i].ref, &ref, NULL) < 0 ||
		    husk_ref_string(&ref, again, sizeof(again)) < 0 ||
		    strcmp(again, r.e[i].ref) != 0)
			problem(c, EUCLEAN, "reference '%s' is not normalised",
			        r.e[i].ref);
		if (!record_exists(c->s, r.e[i].id))
			problem(c, EUCLEAN,
			        "reference %s points to a missing "
			        "image %s",
			        r.e[i].ref, r.e[i].id);
	}
	repos_free(&r);
}

int husk_store_check(struct husk_store *s, struct husk_error *err)
{
	struct check c = {.s = s};
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	each(&c, s->blobs_fd, check_blob);
	each(&c, s->images_fd, check_record);
	each(&c, s->refs_fd, check_users_dir);
	check_repos(&c);
	store_unlock(s);
	if (c.problems == 1)
		return husk_err(err, c.code, "%s", c.first);
	if (c.problems > 1)
		return husk_err(err, c.code, "%s (and %zu more problems)",
		                c.first, c.problems - 1);
	return 0;
}
