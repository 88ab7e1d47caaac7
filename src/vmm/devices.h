/* Creates the VM's virtio devices from the options (disks, rng, console
 * ports), each on its own virtio-mmio slot with an irqfd, and reports the
 * slots for the kernel command line. */
#ifndef HUSK_VMM_DEVICES_H
#define HUSK_VMM_DEVICES_H

#include "evloop.h"
#include "options.h"
#include "virtio/device.h"
#include "virtio/mmio.h"
#include "vm.h"

/* disks, rng, console, net, 9p shares */
#define VMM_MAX_VIRTIO (VMM_MAX_DISKS + 3 + VMM_MAX_SHARES)

struct vmm_devices {
	unsigned n;
	struct vmm_virtio {
		struct virtio_dev dev;
		struct virtio_mmio mmio;
		void (*destroy)(struct virtio_dev *d);
	} v[VMM_MAX_VIRTIO];
	struct vmm_mmio_slot slots[VMM_MAX_VIRTIO];
};

int devices_create(struct vmm_devices *devs, struct vm *vm,
                   const struct vmm_options *opt, struct evloop *loop,
                   struct husk_error *err);
void devices_destroy(struct vmm_devices *devs);

#endif
