/* husk-vmm's sandbox: after every file, socket and KVM object exists and
 * before the first guest instruction, the process drops to a seccomp
 * allowlist (libseccomp) with no_new_privs. A guest that takes over the
 * VMM process can then only do what a running VMM does. */
#ifndef HUSK_VMM_SANDBOX_H
#define HUSK_VMM_SANDBOX_H

#include "husk/error.h"

/* Before sandbox_enter: also allow what the user-mode network (libslirp,
 * net_slirp.c) does at run time. */
void sandbox_allow_net(void);

/* Before sandbox_enter: also allow what the 9P file server (--share,
 * p9/) does at run time. */
void sandbox_allow_p9(void);

int sandbox_enter(struct husk_error *err);

#endif
