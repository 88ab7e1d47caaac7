/* Pods: containers that share a sandbox id (the CRI annotation
 * io.kubernetes.cri.sandbox-id, or io.husk.pod) run in one microVM, each
 * in its own namespaces. The VM belongs to a pod daemon (pod_daemon.c),
 * started by the pod's first container and ending with its last. Every
 * member's supervisor talks the ordinary agent protocol over a unix
 * socket to the daemon, which routes frames between the members and the
 * one agent (pod_router.c), renumbering streams. A member's root file
 * system reaches the VM through the pod's virtio-9p share: the member
 * bind-mounts it read-only into ROOT/.pods/POD/share/ (the VM's devices
 * are fixed at boot, so there is no disk to hot-plug). */
#ifndef HUSK_RUNTIME_POD_H
#define HUSK_RUNTIME_POD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk/error.h"

#define RT_POD_SHARE_TAG "pod"
/* The pod VM's memory: kept in a memfd and touched only as used, so a
 * generous size costs nothing until the members use it. */
#define RT_POD_VM_MIB  1024
#define RT_POD_VM_CPUS 2

/* ROOT/.pods/POD into buf. */
int rt_pod_dir(const char *pod, char *buf, size_t cap, struct husk_error *err);

/* Takes the pod's lock (ROOT/.pods/POD.lock), held while a member joins
 * and while the daemon ends; returns the descriptor to close. */
int rt_pod_lock(const char *pod, struct husk_error *err);
/* Releases it; with remove, its file goes too (the pod has ended). */
void rt_pod_unlock(const char *pod, int lock, bool remove);
/* Removes a pod's directory: members' share entries that are still
 * mounted (their supervisors were killed) are detached first. */
void rt_pod_remove_dir(const char *dir);

/* Connects to the pod's daemon, starting it (and its VM) first when the
 * pod has none. *chan is an agent channel for husk_mux_init. */
int rt_pod_join(const char *pod, int *chan, struct husk_error *err);

/* The share entry of the member whose supervisor is sup_pid, started at
 * start (husk_proc_start_time): "cPID-START", unique even across pid
 * reuse, and known to `delete` from the state. */
void rt_pod_member_name(pid_t sup_pid, uint64_t start, char *buf, size_t cap);
/* Bind-mounts src (read-only with readonly) at the pod share's entry
 * name and gives its place in the guest's share, "pod/NAME": a member's
 * root ("9p:" before it is the agent's root device) or a volume. */
int rt_pod_share(const char *pod, const char *name, const char *src,
                 bool readonly, char *device, size_t cap,
                 struct husk_error *err);
/* Undoes rt_pod_share for a member's entry NAME and its volumes,
 * NAME-vN; nothing when they are not there. */
void rt_pod_unshare_member(const char *pod, const char *name);

/* The id of the running member of pod whose supervisor's PID namespace
 * path ("/proc/PID/ns/pid") that is, into id (129 bytes). */
int rt_pod_pidns_member(const char *pod, const char *path, char *id,
                        struct husk_error *err);

/* The daemon's body, in a process of its own (rt_pod_join forks it):
 * boots the VM, reports "OK" or why not on ready, and serves members
 * until the last has gone. */
int rt_pod_daemon_main(const char *pod, const char *dir, int ready);

#endif
