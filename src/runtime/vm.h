/* What runs a container's processes (vm.c): a microVM, or on a test host
 * husk-agent as a process. */
#ifndef HUSK_RUNTIME_VM_H
#define HUSK_RUNTIME_VM_H

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "husk/vm_backend.h"
#include "rt.h"

#define RT_DEFAULT_VM_MIB  256
#define RT_VM_MIB_HEADROOM 96
/* How long the agent may take to answer, its boot included: generous,
 * since a host under load (or an emulated test machine) boots slowly and
 * a create that gives up leaves the caller nothing to retry with. */
#define RT_AGENT_TIMEOUT_MS 300000
/* How long a VM told to power off may take before it is killed. */
#define RT_VM_GRACE_MS 5000

/* $HUSK_RUNTIME_AGENT: run the agent on the host as our child, in its own
 * namespaces, instead of in a VM (fast tests of all but the VM); NULL
 * when unset. */
const char *rt_host_agent(void);
/* Starts that agent with its state and log under dir; vm->pid is the
 * agent, vm->agent_fd our end of its channel. */
int rt_spawn_host_agent(const char *agent, const char *dir, struct husk_vm *vm,
                        struct husk_error *err);

/* A VM's memory for a container memory limit (0: none): the limit plus
 * room for the guest kernel and agent. */
unsigned rt_vm_memory_mib(uint64_t limit);

struct rt_vm_plan {
	const struct husk_vm_disk *disks;
	size_t ndisks;
	const struct husk_vm_share *shares;
	size_t nshares;
	unsigned memory_mib, cpus;
	const char *run_dir; /* its console and VMM logs */
};
/* Boots a microVM with husk-vmm (or QEMU, $HUSK_RUNTIME_VMM) and a
 * user-mode NAT network. */
int rt_vm_boot(const struct rt_vm_plan *p, struct husk_vm *vm,
               struct husk_error *err);

#endif
