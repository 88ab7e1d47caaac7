/* --share TAG=DIR[,ro]: a host directory the guest mounts over virtio-9p
 * (`mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt`). Parsing is
 * pure; the directory is opened when the device is made. */
#ifndef HUSK_VMM_SHARE_OPTIONS_H
#define HUSK_VMM_SHARE_OPTIONS_H

#include <stdbool.h>

#include "husk/error.h"

#define VMM_MAX_SHARES 8

struct vmm_share {
	const char *tag;  /* 1..31 of [A-Za-z0-9_-] */
	const char *path; /* the host directory */
	bool read_only;
};

/* Parses arg (modified in place; the strings point into it) into *s and
 * checks it against the n shares already given (no tag twice). 0 or
 * -EINVAL with err saying why. */
int vmm_parse_share(char *arg, struct vmm_share *s,
                    const struct vmm_share *given, unsigned n,
                    struct husk_error *err);

#endif
