/* What `husk run` runs: the command, environment, working directory,
 * user and root disk, from the command line alone (--rootfs) or merged
 * with an image's config as Docker merges them. */
#include "run_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "husk/image_disk.h"
#include "husk/rootfs_disk.h"

static const char *rootfs_cache_dir(void)
{
	const char *d = getenv("HUSK_CACHE_DIR");
	return d && d[0] ? d : "/var/cache/husk/rootfs";
}

static int push(char ***v, size_t *n, const char *s, struct husk_error *err)
{
	char **grown = realloc(*v, (*n + 2) * sizeof(char *));
	if (!grown)
		return husk_err(err, ENOMEM, "out of memory");
	*v = grown;
	if (!(grown[*n] = strdup(s)))
		return husk_err(err, ENOMEM, "out of memory");
	grown[++*n] = NULL;
	return 0;
}

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* KEY=VALUE into env, replacing an earlier KEY: the process would
 * otherwise see whichever its libc finds first. */
static int set_env(char ***env, size_t *n, const char *kv,
                   struct husk_error *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	for (size_t i = 0; i < *n; i++) {
		if (!strncmp((*env)[i], kv, klen) && (*env)[i][klen] == '=') {
			char *dup = strdup(kv);
			if (!dup)
				return husk_err(err, ENOMEM, "out of memory");
			free((*env)[i]);
			(*env)[i] = dup;
			return 0;
		}
	}
	return push(env, n, kv, err);
}

static int dup_opt(char **dst, const char *src, struct husk_error *err)
{
	if (!src || !src[0])
		return 0;
	if (!(*dst = strdup(src)))
		return husk_err(err, ENOMEM, "out of memory");
	return 0;
}

/* Docker's rules: --entrypoint replaces the image's entrypoint and drops
 * its Cmd; arguments after the image replace its Cmd. */
static int merge_command(const struct husk_run_options *o,
                         const struct husk_image_config *cfg,
                         struct run_plan *p, struct husk_error *err)
{
	size_t n = 0;
	int rc = 0;
	if (o->entrypoint) {
		if (o->entrypoint[0])
			rc = push(&p->argv, &n, o->entrypoint, err);
	} else {
		for (size_t i = 0; rc == 0 && cfg && i < cfg->n_entrypoint; i++)
			rc = push(&p->argv, &n, cfg->entrypoint[i], err);
	}
	if (o->ncmd) {
		for (size_t i = 0; rc == 0 && i < o->ncmd; i++)
			rc = push(&p->argv, &n, o->cmd[i], err);
	} else if (!o->entrypoint) {
		for (size_t i = 0; rc == 0 && cfg && i < cfg->n_cmd; i++)
			rc = push(&p->argv, &n, cfg->cmd[i], err);
	}
	if (rc == 0 && n == 0)
		rc = husk_err(err, EINVAL, "no command specified");
	return rc;
}

static int merge_rest(const struct husk_run_options *o,
                      const struct husk_image_config *cfg, struct run_plan *p,
                      struct husk_error *err)
{
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && cfg && i < cfg->n_env; i++)
		rc = set_env(&p->env, &n, cfg->env[i], err);
	for (size_t i = 0; rc == 0 && i < o->nenv; i++)
		rc = set_env(&p->env, &n, o->env[i], err);
	if (rc == 0)
		rc = dup_opt(&p->cwd,
		             o->workdir ? o->workdir
		                        : (cfg ? cfg->working_dir : NULL),
		             err);
	if (rc == 0)
		rc = dup_opt(&p->user,
		             o->user ? o->user : (cfg ? cfg->user : NULL), err);
	return rc;
}

int run_plan_rootfs(const struct husk_run_options *o, bool need_disk,
                    struct run_plan *p, struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	int rc = merge_command(o, NULL, p, err);
	if (rc == 0)
		rc = merge_rest(o, NULL, p, err);
	if (rc == 0 && need_disk)
		rc = husk_rootfs_disk(o->rootfs, rootfs_cache_dir(), p->disk,
		                      sizeof(p->disk), err);
	return rc;
}

int run_plan_image(const struct husk_run_options *o, const char *container_id,
                   bool need_disk, struct run_plan *p, struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	struct husk_store *s;
	int rc = husk_store_open(NULL, &s, err);
	if (rc < 0)
		return rc;
	struct husk_image img = {0};
	rc = husk_store_image_get(s, o->image, &img, err);
	if (rc == -ENOENT) {
		fprintf(stderr, "Unable to find image '%s' locally\n",
		        o->image);
		husk_image_free(&img);
		rc = cli_pull(s, o->image, &img, err);
	}
	struct husk_image_config cfg = {0};
	if (rc == 0)
		rc = husk_store_image_config(s, &img, &cfg, err);
	if (rc == 0)
		rc = merge_command(o, &cfg, p, err);
	if (rc == 0)
		rc = merge_rest(o, &cfg, p, err);
	if (rc == 0 && need_disk)
		rc = husk_image_disk(s, &img, p->disk, sizeof(p->disk), err);
	else if (rc == 0)
		rc = husk_image_rootfs(s, &img, p->rootfs, sizeof(p->rootfs),
		                       err);
	/* The image is in use from now on: rmi and prune leave it. */
	if (rc == 0)
		rc = husk_store_image_ref(s, img.id, container_id, err);
	if (rc == 0)
		snprintf(p->image_id, sizeof(p->image_id), "%s", img.id);
	husk_image_config_free(&cfg);
	husk_image_free(&img);
	husk_store_close(s);
	return rc;
}

void run_plan_done(struct run_plan *p, const char *container_id)
{
	if (p->image_id[0]) {
		struct husk_store *s;
		struct husk_error err = {0};
		if (husk_store_open(NULL, &s, &err) == 0) {
			if (husk_store_image_unref(s, p->image_id, container_id,
			                           &err) < 0)
				fprintf(stderr, "husk: %s\n", err.msg);
			husk_store_close(s);
		}
	}
	free_strv(p->argv);
	free_strv(p->env);
	free(p->cwd);
	free(p->user);
	memset(p, 0, sizeof(*p));
}
