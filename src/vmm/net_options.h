/* husk-vmm's --net option (pure parsing; unit-tested):
 *
 *   --net none
 *   --net user[,hostfwd=tcp|udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT]...
 *   --net tap[,ifname=NAME][,bridge=BR][,mac=MAC]
 *   --net tap,fd=N[,mac=MAC]
 *
 * QEMU's spelling, so that the two backends of husk run read alike. An
 * empty HOSTIP is 0.0.0.0 (every host address, as Docker's -p), an empty
 * GUESTIP the guest's address VMM_NET_GUEST. A tap is created (or an
 * existing one opened) by husk-vmm itself, or inherited as descriptor N
 * (what husk run passes: it creates the tap, see husk/tap.h). */
#ifndef HUSK_VMM_NET_OPTIONS_H
#define HUSK_VMM_NET_OPTIONS_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "husk/error.h"

#define VMM_MAX_HOSTFWD 32

/* The user-mode network, as QEMU's (and as husk's agent configures it). */
#define VMM_NET_NETWORK "10.0.2.0"
#define VMM_NET_PREFIX  24
#define VMM_NET_GUEST   "10.0.2.15"
#define VMM_NET_GATEWAY "10.0.2.2"
#define VMM_NET_DNS     "10.0.2.3"

struct vmm_hostfwd {
	bool udp;
	struct in_addr host_addr;
	uint16_t host_port; /* 1..65535 */
	struct in_addr guest_addr;
	uint16_t guest_port; /* 1..65535 */
};

struct vmm_net {
	bool user; /* the user-mode network; neither user nor tap: no NIC */
	unsigned nfwd;
	struct vmm_hostfwd fwd[VMM_MAX_HOSTFWD];
	bool tap;                 /* a tap (net_tap.c) */
	int tap_fd;               /* tap: inherited descriptor, or -1 */
	char ifname[IF_NAMESIZE]; /* tap: "" the kernel's choice */
	char bridge[IF_NAMESIZE]; /* tap: "" none */
	bool has_mac;             /* tap: else a random 52:54:00:... */
	uint8_t mac[6];
};

/* Parses one --net argument into *n (replacing what an earlier one set).
 * 0 or -EINVAL with a message. */
int vmm_parse_net(const char *arg, struct vmm_net *n, struct husk_error *err);

#endif
