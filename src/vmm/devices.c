#include "devices.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net_slirp.h"
#include "net_tap.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/p9.h"
#include "virtio/rng.h"

/* Interrupt lines for virtio devices: ISA lines nobody else uses here
 * (4 is the UART, 8 the RTC, 0-2 timer/keyboard/cascade), then the
 * IOAPIC's upper pins. */
static const unsigned virtio_irqs[] = {5,  6,  7,  9,  10, 11, 12, 14, 15,
                                       16, 17, 18, 19, 20, 21, 22, 23};

static int attach(struct vmm_devices *devs, struct vm *vm, struct vmm_virtio *v,
                  struct husk_error *err)
{
	unsigned i = devs->n;
	/* More devices than interrupt lines (disks, shares and the rest all
	 * at their maximum): refuse rather than share a line. */
	if (i >= sizeof(virtio_irqs) / sizeof(virtio_irqs[0]))
		return husk_err(err, E2BIG,
		                "too many virtio devices (at most %zu)",
		                sizeof(virtio_irqs) / sizeof(virtio_irqs[0]));
	uint64_t base = VIRTIO_MMIO_BASE + (uint64_t)i * VIRTIO_MMIO_SIZE;
	unsigned irq = virtio_irqs[i];
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return husk_err_errno(err, errno, "eventfd");
	struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = irq};
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int e = errno;
		close(fd);
		return husk_err_errno(err, e, "KVM_IRQFD");
	}
	virtio_mmio_init(&v->mmio, &v->dev, base, irq, fd);
	struct bus_device bd = virtio_mmio_bus_device(&v->mmio);
	int rc = bus_register(&vm->mmio, base, VIRTIO_MMIO_SIZE, &bd, err);
	if (rc < 0)
		return rc;
	devs->slots[i] = (struct vmm_mmio_slot){base, irq};
	devs->n++;
	return 0;
}

int devices_create(struct vmm_devices *devs, struct vm *vm,
                   const struct vmm_options *opt, struct evloop *loop,
                   struct husk_error *err)
{
	memset(devs, 0, sizeof(*devs));
	int rc = 0;
	for (unsigned i = 0; rc == 0 && i < opt->ndisks; i++) {
		struct vmm_virtio *v = &devs->v[devs->n];
		struct virtio_blk_config_opts o = {opt->disks[i].path,
		                                   opt->disks[i].read_only,
		                                   opt->disks[i].serial};
		rc = virtio_blk_init(&v->dev, &vm->mem, &o, err);
		if (rc == 0) {
			v->destroy = virtio_blk_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	if (rc == 0 && opt->rng) {
		struct vmm_virtio *v = &devs->v[devs->n];
		rc = virtio_rng_init(&v->dev, &vm->mem, err);
		if (rc == 0) {
			v->destroy = virtio_rng_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	if (rc == 0 && opt->nports) {
		struct vmm_virtio *v = &devs->v[devs->n];
		rc = virtio_console_init(&v->dev, &vm->mem, opt->ports,
		                         opt->nports, loop, err);
		if (rc == 0) {
			v->destroy = virtio_console_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	if (rc == 0 && opt->net.user) {
		struct vmm_virtio *v = &devs->v[devs->n];
		rc = net_slirp_create(&v->dev, &vm->mem, &opt->net, err);
		if (rc == 0) {
			v->destroy = net_slirp_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	if (rc == 0 && opt->net.tap) {
		struct vmm_virtio *v = &devs->v[devs->n];
		rc = net_tap_create(&v->dev, &vm->mem, &opt->net, err);
		if (rc == 0) {
			v->destroy = net_tap_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	for (unsigned i = 0; rc == 0 && i < opt->nshares; i++) {
		struct vmm_virtio *v = &devs->v[devs->n];
		struct virtio_p9_config_opts o = {opt->shares[i].tag,
		                                  opt->shares[i].path,
		                                  opt->shares[i].read_only};
		rc = virtio_p9_init(&v->dev, &vm->mem, &o, err);
		if (rc == 0) {
			v->destroy = virtio_p9_destroy;
			rc = attach(devs, vm, v, err);
		}
	}
	return rc;
}

void devices_destroy(struct vmm_devices *devs)
{
	for (unsigned i = 0; i < VMM_MAX_VIRTIO; i++) {
		struct vmm_virtio *v = &devs->v[i];
		if (v->destroy) {
			v->destroy(&v->dev);
			v->destroy = NULL;
		}
		if (i < devs->n && v->mmio.irqfd >= 0)
			close(v->mmio.irqfd);
	}
	devs->n = 0;
}
