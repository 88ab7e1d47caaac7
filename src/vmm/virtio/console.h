/* virtio-console with named ports (VIRTIO_CONSOLE_F_MULTIPORT). Each port
 * is bound on the host to a unix socket husk-vmm listens on (one client at
 * a time) or to an inherited fd; in the guest it is /dev/vportNpM with its
 * name in /sys/class/virtio-ports/vportNpM/name. Guest writes to a port
 * with no host peer wait (the driver sees the host disconnected) instead
 * of being dropped, so a protocol over a port never loses bytes. */
#ifndef HUSK_VMM_VIRTIO_CONSOLE_H
#define HUSK_VMM_VIRTIO_CONSOLE_H

#include "../evloop.h"
#include "../options.h"
#include "device.h"

int virtio_console_init(struct virtio_dev *d, const struct guest_mem *mem,
                        const struct vmm_port *ports, unsigned nports,
                        struct evloop *loop, struct husk_error *err);
void virtio_console_destroy(struct virtio_dev *d);

#endif
