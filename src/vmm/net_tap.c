/* A tap behind virtio-net; see net_tap.h. */
#include "net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "husk/tap.h"
#include "log.h"
#include "virtio/net.h"

/* Frames moved each way per turn, so that a guest sending without pause
 * does not starve the other direction. */
#define BATCH 256

struct tap_net {
	struct virtio_dev *dev;
	int fd;
	int wake_fd;
	char name[IF_NAMESIZE];
	pthread_t thread;
	bool started;
	atomic_bool stop;
	uint8_t *tx;   /* a frame from the guest on its way to the tap */
	uint8_t *rx;   /* a frame from the tap on its way to the guest */
	size_t rx_len; /* 0: none held */
	uint64_t tx_errors;
};

static void wake(struct tap_net *t)
{
	uint64_t one = 1;
	ssize_t n = write(t->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter already wakes the thread */
}

/* vCPU thread, device lock held: only wake the backend. */
static void on_guest_ready(void *opaque)
{
	wake(opaque);
}

/* Tap to guest; true when more may be waiting. A frame the guest has no
 * buffer for is held, and the tap is not read again until rx_ready. */
static bool to_guest(struct tap_net *t)
{
	for (int i = 0; i < BATCH; i++) {
		if (!t->rx_len) {
			ssize_t n = read(t->fd, t->rx, VIRTIO_NET_MAX_FRAME);
			if (n <= 0)
				return false; /* EAGAIN: drained */
			t->rx_len = (size_t)n;
		}
		if (virtio_net_rx_push(t->dev, t->rx, t->rx_len) == 0)
			return false; /* no buffer: wait for rx_ready */
		t->rx_len = 0;        /* delivered, or dropped and counted */
	}
	return true;
}

/* Guest to tap; true when more may be waiting. */
static bool to_tap(struct tap_net *t)
{
	for (int i = 0; i < BATCH; i++) {
		size_t len =
		    virtio_net_tx_pop(t->dev, t->tx, VIRTIO_NET_MAX_FRAME);
		if (!len)
			return false;
		/* A tap write does not block: the kernel takes the frame or
		 * drops it (a full backlog), as a link would. */
		if (write(t->fd, t->tx, len) != (ssize_t)len)
			t->tx_errors++;
	}
	return true;
}

static void *tap_thread(void *arg)
{
	struct tap_net *t = arg;
	while (!atomic_load(&t->stop)) {
		struct pollfd pfd[2] = {
		    {t->wake_fd, POLLIN, 0},
		    {t->fd, (short)(t->rx_len ? 0 : POLLIN), 0},
		};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(t->wake_fd, &v, sizeof(v));
			(void)n;
		}
		bool more = to_guest(t);
		more |= to_tap(t);
		if (more)
			wake(t); /* come straight back for the rest */
	}
	return NULL;
}

/* The inherited descriptor is a tap without packet information, made
 * without a vnet header: anything else would garble every frame. */
static int check_inherited(int fd, struct husk_error *err)
{
	struct ifreq ifr = {0};
	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return husk_err_errno(err, errno, "--net tap,fd=%d: not a tap",
		                      fd);
	if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN)) != IFF_TAP ||
	    !(ifr.ifr_flags & IFF_NO_PI) || (ifr.ifr_flags & IFF_VNET_HDR))
		return husk_err(err, EINVAL,
		                "--net tap,fd=%d: want a tap with IFF_NO_PI "
		                "and without IFF_VNET_HDR",
		                fd);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return husk_err_errno(err, errno, "--net tap,fd=%d", fd);
	return 0;
}

static int open_tap(struct tap_net *t, const struct vmm_net *n,
                    struct husk_error *err)
{
	if (n->tap_fd >= 0) {
		int rc = check_inherited(n->tap_fd, err);
		if (rc == 0)
			t->fd = n->tap_fd;
		return rc;
	}
	struct husk_tap_request r = {n->ifname, n->bridge, false};
	int fd = husk_tap_open(&r, t->name, err);
	if (fd < 0)
		return fd;
	t->fd = fd;
	vmm_debug("net: tap %s%s%s", t->name, n->bridge[0] ? " on bridge " : "",
	          n->bridge);
	return 0;
}

static void free_tap(struct tap_net *t)
{
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	if (t->fd >= 0)
		close(t->fd);
	free(t->tx);
	free(t->rx);
	free(t);
}

int net_tap_create(struct virtio_dev *d, const struct guest_mem *mem,
                   const struct vmm_net *n, struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	struct tap_net *t = calloc(1, sizeof(*t));
	if (!t)
		return husk_err(err, ENOMEM, "net");
	t->dev = d;
	t->fd = -1;
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->tx = malloc(VIRTIO_NET_MAX_FRAME);
	t->rx = malloc(VIRTIO_NET_MAX_FRAME);
	uint8_t mac[6] = {0x52, 0x54, 0x00};
	if (n->has_mac)
		memcpy(mac, n->mac, 6);
	else if (getrandom(mac + 3, 3, 0) != 3)
		memcpy(mac + 3, (uint8_t[]){0x12, 0x34, 0x56}, 3);
	struct virtio_net_backend be = {t, on_guest_ready, on_guest_ready};
	int rc;
	if (t->wake_fd < 0)
		rc = husk_err_errno(err, errno, "net: eventfd");
	else if (!t->tx || !t->rx)
		rc = husk_err(err, ENOMEM, "net");
	else
		rc = open_tap(t, n, err);
	if (rc == 0)
		rc = virtio_net_init(d, mem, mac, &be, err);
	if (rc < 0) { /* d holds nothing yet */
		free_tap(t);
		return rc;
	}
	int e = pthread_create(&t->thread, NULL, tap_thread, t);
	if (e) {
		net_tap_destroy(d);
		return husk_err_errno(err, e, "net: thread");
	}
	t->started = true;
	return 0;
}

void net_tap_destroy(struct virtio_dev *d)
{
	struct tap_net *t = virtio_net_backend_opaque(d);
	if (!t)
		return;
	if (t->started) {
		atomic_store(&t->stop, true);
		wake(t);
		pthread_join(t->thread, NULL);
	}
	if (t->tx_errors)
		vmm_debug("net: %llu frames not written to the tap",
		          (unsigned long long)t->tx_errors);
	virtio_net_destroy(d);
	free_tap(t);
}
