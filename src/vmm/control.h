/* The control socket (--control PATH): a unix stream socket; each client
 * sends one command line and gets one reply line, then the connection
 * closes.
 *   state -> {"state":"running","cpus":N,"memory_mib":M,"devices":N}
 *   stop  -> {"ok":true}, and the VM stops (husk-vmm exits 6)
 *   anything else -> {"error":"unknown command"} */
#ifndef HUSK_VMM_CONTROL_H
#define HUSK_VMM_CONTROL_H

#include "evloop.h"
#include "vm.h"

struct control {
	int listen_fd;
	char *path;
	struct vm *vm;
	struct evloop *loop;
	uint64_t memory_mib;
	unsigned ndevices;
};

int control_open(struct control *c, const char *path, struct vm *vm,
                 struct evloop *loop, struct husk_error *err);
void control_close(struct control *c);

#endif
