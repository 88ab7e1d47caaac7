/* The user-mode network behind virtio-net: libslirp (as QEMU's -netdev
 * user) on a thread of its own. Guest 10.0.2.15/24, gateway 10.0.2.2 (the
 * host's loopback seen from the guest), DNS 10.0.2.3 forwarded to the
 * host's resolvers; outbound TCP, UDP and ping are NATed through ordinary
 * host sockets, and --net hostfwd= publishes host ports.
 *
 * Why a thread and not the main epoll loop: libslirp's interface is
 * poll()-shaped (slirp_pollfds_fill rebuilds the descriptor set on every
 * turn, with a timeout for its TCP timers), its sockets come and go with
 * every connection, and it is not thread-safe. One thread that owns the
 * Slirp and runs poll() keeps all of that in one place, keeps the main
 * loop's fixed table free for the console and control sockets, and lets
 * guest network traffic and console traffic proceed side by side. The
 * thread and every socket the forwards need exist before the sandbox goes
 * up (TSYNC covers the thread). */
#ifndef HUSK_VMM_NET_SLIRP_H
#define HUSK_VMM_NET_SLIRP_H

#include "husk/error.h"
#include "net_options.h"
#include "virtio/device.h"

/* Makes d a virtio-net device backed by a new slirp stack configured from
 * n (n->user must be set), binds every host forward, and starts the
 * network thread. A forward whose host port is taken fails with
 * EADDRINUSE and "port 127.0.0.1:18080 is already in use". 0, or a
 * negative errno with *err filled and everything undone. */
int net_slirp_create(struct virtio_dev *d, const struct guest_mem *mem,
                     const struct vmm_net *n, struct husk_error *err);

/* Stops the thread, closes the stack and the device. Safe on a zeroed d
 * and twice. */
void net_slirp_destroy(struct virtio_dev *d);

#endif
