/* The supervisor's insides, shared by its set-up (supervisor.c) and its
 * event loop (supervisor_loop.c). */
#ifndef HUSK_RUNTIME_SUP_H
#define HUSK_RUNTIME_SUP_H

#include <limits.h>
#include <stdint.h>

#include "husk/agent_mux.h"
#include "husk/vm_backend.h"
#include "rt.h"

#define SUP_MAX_CLIENTS   32
#define SUP_KILL_GRACE_MS 5000

struct sup_client {
	int fd;          /* -1: free */
	uint32_t stream; /* the exec it waits on, or 0 */
};

struct sup {
	struct rt_create *c;
	struct rt_state st;
	char dir[PATH_MAX];
	int listen_fd, sig_fd;
	struct husk_vm vm;
	bool vm_started;
	bool host_agent; /* HUSK_RUNTIME_AGENT: an agent process, no VM */
	/* In a pod (pod.h): its id, and our entry in its share ("" none);
	 * the VM is the pod daemon's and vm.pid is -1. */
	char pod[129];
	char pod_entry[32];
	struct husk_mux mux;
	bool mux_ready;
	uint32_t init_stream;
	uint32_t init_pid; /* in the guest */
	int tty_fd;        /* the init's terminal (our end), or -1 */
	struct sup_client clients[SUP_MAX_CLIENTS];
	int64_t kill_deadline;
	bool done;
	int exit_code;
};

int64_t sup_now_ms(void);
/* Runs the event loop until the container ends; returns its exit code. */
int sup_loop(struct sup *s);
/* Ends the VM (or host agent): SHUTDOWN, then SIGKILL after a grace. */
void sup_stop_vm(struct sup *s);

#endif
