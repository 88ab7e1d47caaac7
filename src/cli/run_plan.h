/* What `husk run` runs, merged from its command line and an image. */
#ifndef HUSK_CLI_RUN_PLAN_H
#define HUSK_CLI_RUN_PLAN_H

#include <limits.h>
#include <stdbool.h>

#include "husk/error.h"
#include "husk/reference.h"
#include "husk/run_options.h"

struct run_plan {
	char disk[PATH_MAX];            /* the root disk image, or "" */
	char rootfs[PATH_MAX];          /* an image's root directory, or "" */
	char image_id[HUSK_DIGEST_MAX]; /* the image in use, or "" */
	char **argv, **env;             /* NULL-terminated, owned */
	char *cwd, *user;               /* NULL: the agent's defaults */
};

/* --rootfs DIR: the command line alone; the disk (a cached image of DIR)
 * only when need_disk (not for a host agent, which takes DIR itself). */
int run_plan_rootfs(const struct husk_run_options *o, bool need_disk,
                    struct run_plan *p, struct husk_error *err);
/* IMAGE: found in the store (pulled when missing), its config merged as
 * Docker does, and recorded as used by container_id until run_plan_done
 * (clear image_id to keep it so). With need_disk its disk is built or
 * reused; else its unpacked root directory (husk_image_rootfs) goes to
 * p->rootfs, for husk-runtime. */
int run_plan_image(const struct husk_run_options *o, const char *container_id,
                   bool need_disk, struct run_plan *p, struct husk_error *err);
void run_plan_done(struct run_plan *p, const char *container_id);

#endif
