/* A tap interface behind virtio-net: the guest's frames go to the host's
 * kernel as they are (a bridge port, real addresses), with no NAT.
 *
 * The tap is opened without IFF_VNET_HDR: frames are plain Ethernet, as
 * libslirp's are, so the device keeps offering no offloads and the same
 * checked code (virtio_net_tx_pop/rx_push) serves both backends. Without
 * TUNSETOFFLOAD the host kernel segments and checksums every packet before
 * it reaches the tap, so what we read always fits the guest's MTU-sized
 * receive buffers. Offloads (CSUM/TSO with a vnet header and MRG_RXBUF)
 * would cut copies and exits; they are the next step, not this one.
 *
 * One thread, as for slirp: it poll()s the tap and an eventfd the vCPU
 * threads poke (tx_ready/rx_ready), moves frames one at a time, and holds
 * at most one frame from the tap while the guest has no receive buffer,
 * leaving the rest in the tap's own queue (which drops beyond its length,
 * as a link would). All privileged work (TUNSETIFF, bringing the tap up,
 * SIOCBRADDIF) happens in net_tap_create, before the sandbox: at run time
 * the thread only read()s, write()s and poll()s, which the base allowlist
 * has. */
#ifndef HUSK_VMM_NET_TAP_H
#define HUSK_VMM_NET_TAP_H

#include "husk/error.h"
#include "net_options.h"
#include "virtio/device.h"

/* Makes d a virtio-net device on the tap n describes (n->tap set): the
 * inherited descriptor n->tap_fd, or a tap opened by name (created when
 * missing) and attached to n->bridge. Errors as husk_tap_open's ("creating
 * a tap needs CAP_NET_ADMIN", "bridge br-x does not exist", "interface X
 * is in use"). 0, or a negative errno with *err filled and all undone. */
int net_tap_create(struct virtio_dev *d, const struct guest_mem *mem,
                   const struct vmm_net *n, struct husk_error *err);

/* Stops the thread and closes the device and the tap (a tap created here
 * then disappears). Safe on a zeroed d and twice. */
void net_tap_destroy(struct virtio_dev *d);

#endif
