/* A tap interface on a host bridge, for a VM's virtio-net (docs/
 * networking.md). Used by husk-vmm (--net tap,ifname=...,bridge=...) and
 * by husk_vm_start, which creates the tap for either VMM before it starts
 * and hands it the descriptor: the privileged steps then happen in one
 * place, before any guest code runs, and their errors reach the user
 * before a VM boots.
 *
 * Lifetime: a tap made here is not persistent (no TUNSETPERSIST), so the
 * kernel removes it, and takes it off the bridge, when the last
 * descriptor on it closes: when the VMM ends, however it ends. Nothing has
 * to remember to delete it. A persistent tap made beforehand (`ip tuntap
 * add`) is used as it is and outlives the VM.
 */
#ifndef HUSK_TAP_H
#define HUSK_TAP_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "husk/error.h"

/* The name a tap gets when none is asked for; the kernel replaces %d with
 * the first free number. */
#define HUSK_TAP_DEFAULT_NAME "husk%d"

struct husk_tap_request {
	const char *ifname; /* NULL or "": HUSK_TAP_DEFAULT_NAME */
	const char *bridge; /* NULL or "": not attached to a bridge */
	/* IFF_VNET_HDR: frames carry a virtio-net header (QEMU uses it for
	 * offloads; husk-vmm does not, see net_tap.h). */
	bool vnet_hdr;
};

/* The steps of husk_tap_open, for husk_tap_error. */
enum husk_tap_step {
	HUSK_TAP_OPEN_TUN,   /* open /dev/net/tun */
	HUSK_TAP_SETIFF,     /* TUNSETIFF */
	HUSK_TAP_BRIDGE,     /* the bridge lookup */
	HUSK_TAP_NOT_BRIDGE, /* the bridge names a device that is none */
	HUSK_TAP_UP,         /* SIOCSIFFLAGS IFF_UP */
	HUSK_TAP_ADDIF,      /* SIOCBRADDIF */
};

/* Opens (creating when needed) the tap, brings it up and attaches it to
 * the bridge (unless it already is). Returns the descriptor (O_CLOEXEC,
 * O_NONBLOCK) and the tap's name in name, or a negative errno with a
 * message from husk_tap_error. Everything is undone on failure. */
int husk_tap_open(const struct husk_tap_request *r, char name[IF_NAMESIZE],
                  struct husk_error *err);

/* The message for a failed step (pure; unit-tested): EPERM/EACCES says
 * that creating a tap needs CAP_NET_ADMIN, a missing bridge "bridge BR
 * does not exist", a name taken by another device or a busy tap "NAME is
 * in use". Returns -e. */
int husk_tap_error(enum husk_tap_step step, int e, const char *ifname,
                   const char *bridge, struct husk_error *err);

/* "10.88.0.2/24": a dotted IPv4 address and a prefix of 1..30 (what the
 * agent takes), neither the subnet's network nor its broadcast address.
 * 0, or -EINVAL with a message naming what (the caller's option) and s. */
int husk_parse_cidr(const char *what, const char *s, struct in_addr *addr,
                    unsigned *prefix, struct husk_error *err);

/* The bridge's own IPv4 address (SIOCGIFADDR), the guest's natural
 * gateway. 0, or a negative errno (no such bridge, no address). */
int husk_tap_bridge_addr(const char *bridge, struct in_addr *out);

/* The guest's MAC on a bridge, from its IPv4 address as Docker derives
 * its own: 52:54 (QEMU's locally administered prefix) and the four bytes
 * of the address, so that VMs on one bridge never share a MAC. */
void husk_tap_mac_for(struct in_addr a, uint8_t mac[6]);

#endif
