/* Volumes of one container, as a VM and its agent take them: each host
 * directory a virtio-9p share (tag volN) that the agent mounts at its
 * destination ("9p:TAG:MODE:DEST"), tmpfs mounts as such, and on a host
 * agent (tests) plain binds ("bind:PATH:MODE:DEST"). husk run -v and
 * husk-runtime's bundle mounts both build one of these. */
#ifndef HUSK_VOLUMES_H
#define HUSK_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>

#include "husk/error.h"
#include "husk/proto.h"
#include "husk/vm_backend.h"

struct husk_volumes {
	bool host_agent; /* binds instead of shares */
	struct husk_vm_share shares[HUSK_VM_MAX_SHARES];
	char tags[HUSK_VM_MAX_SHARES][8];
	size_t nshares;
	/* NULL-terminated, for husk_run_request.mounts */
	char *mounts[HUSK_PROTO_MAX_MOUNTS + 1];
	size_t nmounts;
};

/* A host directory at dest (on a host agent also a file). ENOTDIR for
 * anything but a directory (only directories can be shared with a VM),
 * E2BIG past HUSK_VM_MAX_SHARES.
 * host is kept by pointer: it must outlive the set. */
int husk_volumes_add_dir(struct husk_volumes *v, const char *host,
                         const char *dest, bool readonly,
                         struct husk_error *err);
/* A directory already in a VM's share, "TAG/SUBDIR" (a pod's: its VM
 * has its shares from boot), at dest ("9p:TAG/SUBDIR:MODE:DEST"). */
int husk_volumes_add_share_dir(struct husk_volumes *v, const char *where,
                               const char *dest, bool readonly,
                               struct husk_error *err);
/* A fresh tmpfs at dest. */
int husk_volumes_add_tmpfs(struct husk_volumes *v, const char *dest,
                           struct husk_error *err);
void husk_volumes_free(struct husk_volumes *v);

#endif
