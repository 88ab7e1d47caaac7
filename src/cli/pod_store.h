/* Pods: containers that share one microVM. husk-runtime runs every
 * container whose config.json carries the annotation io.husk.pod=ID in
 * that pod's VM (docs/lifecycle.md). The CLI keeps under $HUSK_ROOT:
 *
 *   pods/.lock           held while a pod is created, joined or removed
 *   pods/ID/pod.json     the record: id, name, created, share_pid
 *   pods/ID/start.lock   held while a member of a --share-pid pod starts
 *
 * A container belongs to a pod by the "pod" (its id) of its container.json;
 * the runtime's state says which members run. */
#ifndef HUSK_CLI_POD_STORE_H
#define HUSK_CLI_POD_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "container_store.h"

#define POD_ANNOTATION "io.husk.pod"

struct pod {
	char id[CTR_ID_LEN + 1];
	json_object *record; /* pod.json, owned */
};

/* How many containers a pod has, and how many of them run. */
struct pod_usage {
	size_t containers, running;
};

/* pods/.lock: the fd to close to unlock, or negative errno. */
int pod_lock(struct husk_error *err);
/* Loads the pod ID. ENOENT "no such pod: ID". */
int pod_load(const char *id, struct pod *p, struct husk_error *err);
/* By full id, name, or unique id prefix (a name wins), as containers are
 * found. ENOENT "no such pod: X", EINVAL for an ambiguous prefix. */
int pod_find(const char *ref, struct pod *p, struct husk_error *err);
void pod_free(struct pod *p);
/* Every pod, oldest first; free with pod_list_free. */
int pod_list(struct pod **out, size_t *n, struct husk_error *err);
void pod_list_free(struct pod *pods, size_t n);
/* Counts the members of pods[0..n) in one pass over the containers. */
int pod_count(const struct pod *pods, size_t n, struct pod_usage *use,
              struct husk_error *err);
/* The ids of the pod's containers, oldest first (malloc'ed). */
int pod_member_ids(const char *pod_id, char (**ids)[CTR_ID_LEN + 1], size_t *n,
                   struct husk_error *err);

const char *pod_name(const struct pod *p);
bool pod_shares_pid(const struct pod *p);

/* Creates a pod (name NULL: a made-up one); the caller holds pod_lock.
 * EEXIST when the name is in use, EINVAL for a bad name. */
int pod_create(const char *name, bool share_pid, struct pod *p,
               struct husk_error *err);
/* Removes pods/ID; the caller holds pod_lock and removed the members. */
void pod_remove_record(const struct pod *p);
/* Waits up to timeout_ms for husk-runtime's own state of the pod to go
 * (its pod daemon ends, with the VM, just after the last member is
 * deleted); true once it is gone. */
bool pod_runtime_gone(const char *id, int timeout_ms);

/* ctr_start's step before husk-runtime create, for a member of a pod:
 * the pod must still exist; in a --share-pid pod the member's config.json
 * names the PID namespace of the longest-running running member (none:
 * the member founds it), and *lock (else -1) holds the pod's start lock,
 * to be closed once the member runs, so that two members starting at
 * once do not both found one. */
int pod_before_start(struct ctr *c, int *lock, struct husk_error *err);

#endif
