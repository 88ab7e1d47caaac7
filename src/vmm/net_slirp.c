/* libslirp behind virtio-net; see net_slirp.h. */
#include "net_slirp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "log.h"
#include "virtio/net.h"

/* Frames from slirp held while the guest has no receive buffer posted
 * (during boot, or when it falls behind). Beyond this they are dropped and
 * TCP's retransmission takes over, as on a real link. */
#define PENDING_MAX 512
/* Frames taken from the guest per turn of the loop, so that slirp's
 * sockets are served even while the guest sends without pause. */
#define TX_BATCH 256

struct pending {
	uint8_t *data;
	size_t len;
};

struct slirp_timer {
	struct slirp_timer *next;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct slirp_net {
	Slirp *slirp;
	struct virtio_dev *dev;
	int wake_fd;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	struct pollfd *pfd;
	unsigned npfd, pfd_cap;
	struct slirp_timer *timers;
	uint8_t *frame; /* a transmit frame on its way into slirp */
	struct pending pending[PENDING_MAX];
	unsigned pend_head, pend_len;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(struct slirp_net *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter already wakes the thread */
}

/* ---- virtio-net's side (vCPU threads, device lock held) ---- */

static void on_guest_ready(void *opaque)
{
	wake(opaque);
}

/* ---- frames to the guest ---- */

static void flush_pending(struct slirp_net *s)
{
	while (s->pend_len) {
		struct pending *p = &s->pending[s->pend_head];
		if (virtio_net_rx_push(s->dev, p->data, p->len) == 0)
			return; /* still no buffer: wait for rx_ready */
		free(p->data);
		s->pend_head = (s->pend_head + 1) % PENDING_MAX;
		s->pend_len--;
	}
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_net *s = opaque;
	/* In order: behind frames already waiting, never past them. */
	if (!s->pend_len && virtio_net_rx_push(s->dev, buf, len) != 0)
		return (ssize_t)len; /* delivered, or dropped and counted */
	uint8_t *copy = s->pend_len < PENDING_MAX ? malloc(len) : NULL;
	if (!copy) {
		virtio_net_count_rx_drop(s->dev);
		return (ssize_t)len;
	}
	memcpy(copy, buf, len);
	s->pending[(s->pend_head + s->pend_len++) % PENDING_MAX] =
	    (struct pending){copy, len};
	return (ssize_t)len;
}

/* ---- slirp's callbacks ---- */

static void guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	vmm_debug("net: guest error: %s", msg);
}

static int64_t clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_net *s = opaque;
	struct slirp_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct slirp_timer){s->timers, id, cb_opaque, -1};
	s->timers = t;
	return t;
}

static void timer_free(void *timer, void *opaque)
{
	struct slirp_net *s = opaque;
	for (struct slirp_timer **pp = &s->timers; *pp; pp = &(*pp)->next) {
		if (*pp == timer) {
			*pp = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void no_poll_fd(int fd, void *opaque)
{
	/* Only Windows builds of libslirp need to be told of sockets. */
	(void)fd;
	(void)opaque;
}

static void notify(void *opaque)
{
	wake(opaque);
}

static void init_completed(Slirp *slirp, void *opaque)
{
	/* Timers may be created inside slirp_new, before it returns. */
	((struct slirp_net *)opaque)->slirp = slirp;
}

static const SlirpCb callbacks = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = no_poll_fd,
    .unregister_poll_fd = no_poll_fd,
    .notify = notify,
    .init_completed = init_completed,
    .timer_new_opaque = timer_new_opaque,
};

/* ---- the thread ---- */

static short to_poll(int ev)
{
	return (short)((ev & SLIRP_POLL_IN ? POLLIN : 0) |
	               (ev & SLIRP_POLL_OUT ? POLLOUT : 0) |
	               (ev & SLIRP_POLL_PRI ? POLLPRI : 0));
}

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_net *s = opaque;
	if (s->npfd == s->pfd_cap) {
		unsigned cap = s->pfd_cap ? 2 * s->pfd_cap : 64;
		struct pollfd *p = realloc(s->pfd, cap * sizeof(*p));
		if (!p)
			return -1; /* get_revents reports nothing for it */
		s->pfd = p;
		s->pfd_cap = cap;
	}
	s->pfd[s->npfd] = (struct pollfd){fd, to_poll(events), 0};
	return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_net *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->npfd)
		return 0;
	short r = s->pfd[idx].revents;
	return (r & POLLIN ? SLIRP_POLL_IN : 0) |
	       (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
	       (r & POLLPRI ? SLIRP_POLL_PRI : 0) |
	       (r & (POLLERR | POLLNVAL) ? SLIRP_POLL_ERR : 0) |
	       (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

/* Fires due timers; returns ms until the next one (UINT32_MAX: none). */
static uint32_t run_timers(struct slirp_net *s)
{
	int64_t now = now_ns() / 1000000;
	uint32_t next = UINT32_MAX;
	for (struct slirp_timer *t = s->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		if (t->expire_ms <= now) {
			t->expire_ms = -1;
			slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
			/* The handler may have freed or re-armed timers. */
			return 0;
		}
		if ((uint64_t)(t->expire_ms - now) < next)
			next = (uint32_t)(t->expire_ms - now);
	}
	return next;
}

/* Feeds the guest's frames to slirp; true when more may be waiting. */
static bool drain_tx(struct slirp_net *s)
{
	for (int i = 0; i < TX_BATCH; i++) {
		size_t len =
		    virtio_net_tx_pop(s->dev, s->frame, VIRTIO_NET_MAX_FRAME);
		if (!len)
			return false;
		slirp_input(s->slirp, s->frame, (int)len);
	}
	return true;
}

static void *net_thread(void *arg)
{
	struct slirp_net *s = arg;
	while (!atomic_load(&s->stop)) {
		s->npfd = 0;
		add_poll(s->wake_fd, SLIRP_POLL_IN, s);
		uint32_t timeout = run_timers(s);
		slirp_pollfds_fill(s->slirp, &timeout, add_poll, s);
		int r = poll(s->pfd, s->npfd,
		             timeout == UINT32_MAX ? -1 : (int)timeout);
		if (r > 0 && (s->pfd[0].revents & POLLIN)) {
			uint64_t v;
			ssize_t n = read(s->wake_fd, &v, sizeof(v));
			(void)n;
		}
		slirp_pollfds_poll(s->slirp, r < 0 && errno != EINTR,
		                   get_revents, s);
		flush_pending(s);
		if (drain_tx(s))
			wake(s); /* come straight back for the rest */
	}
	return NULL;
}

/* ---- set-up ---- */

static int add_forward(struct slirp_net *s, const struct vmm_hostfwd *f,
                       struct husk_error *err)
{
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
	errno = 0;
	if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port,
	                      f->guest_addr, f->guest_port) == 0)
		return 0;
	/* libslirp keeps bind()'s errno when it cannot listen. */
	if (errno == EADDRINUSE)
		return husk_err(err, EADDRINUSE,
		                "port %s:%u%s is already in use", host,
		                f->host_port, f->udp ? "/udp" : "");
	return husk_err(err, errno ? errno : EINVAL,
	                "cannot publish port %s:%u%s: %s", host, f->host_port,
	                f->udp ? "/udp" : "", strerror(errno ? errno : EINVAL));
}

static int new_stack(struct slirp_net *s, struct husk_error *err)
{
	SlirpConfig cfg = {.version = 4, .in_enabled = true};
	if (inet_pton(AF_INET, VMM_NET_NETWORK, &cfg.vnetwork) != 1 ||
	    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask) != 1 ||
	    inet_pton(AF_INET, VMM_NET_GATEWAY, &cfg.vhost) != 1 ||
	    inet_pton(AF_INET, VMM_NET_GUEST, &cfg.vdhcp_start) != 1 ||
	    inet_pton(AF_INET, VMM_NET_DNS, &cfg.vnameserver) != 1)
		return husk_err(err, EINVAL, "net: bad built-in address");
	/* No IPv6 (Docker's default bridge has none either), no TFTP, no
	 * emulation of old protocols (libslirp calls that code unsafe). */
	Slirp *slirp = slirp_new(&cfg, &callbacks, s);
	if (!slirp)
		return husk_err(err, ENOMEM, "net: slirp_new failed");
	s->slirp = slirp;
	return 0;
}

int net_slirp_create(struct virtio_dev *d, const struct guest_mem *mem,
                     const struct vmm_net *n, struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	struct slirp_net *s = calloc(1, sizeof(*s));
	if (!s)
		return husk_err(err, ENOMEM, "net");
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->frame = malloc(VIRTIO_NET_MAX_FRAME);
	s->pfd_cap = 64;
	s->pfd = calloc(s->pfd_cap, sizeof(*s->pfd));
	s->dev = d;
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	struct virtio_net_backend be = {s, on_guest_ready, on_guest_ready};
	int rc = 0;
	if (s->wake_fd < 0)
		rc = husk_err_errno(err, errno, "net: eventfd");
	else if (!s->frame || !s->pfd)
		rc = husk_err(err, ENOMEM, "net");
	else
		rc = virtio_net_init(d, mem, mac, &be, err);
	if (rc == 0)
		rc = new_stack(s, err);
	for (unsigned i = 0; rc == 0 && i < n->nfwd; i++)
		rc = add_forward(s, &n->fwd[i], err);
	if (rc == 0) {
		int e = pthread_create(&s->thread, NULL, net_thread, s);
		if (e)
			rc = husk_err_errno(err, e, "net: thread");
		s->started = e == 0;
	}
	if (rc < 0) {
		if (!d->priv) { /* virtio_net_init failed: d holds nothing */
			if (s->wake_fd >= 0)
				close(s->wake_fd);
			free(s->frame);
			free(s->pfd);
			free(s);
			return rc;
		}
		net_slirp_destroy(d);
	}
	return rc;
}

void net_slirp_destroy(struct virtio_dev *d)
{
	struct slirp_net *s = virtio_net_backend_opaque(d);
	if (!s)
		return;
	if (s->started) {
		atomic_store(&s->stop, true);
		wake(s);
		pthread_join(s->thread, NULL);
	}
	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->timers)
		timer_free(s->timers, s);
	for (; s->pend_len; s->pend_len--) {
		free(s->pending[s->pend_head].data);
		s->pend_head = (s->pend_head + 1) % PENDING_MAX;
	}
	virtio_net_destroy(d);
	close(s->wake_fd);
	free(s->frame);
	free(s->pfd);
	free(s);
}
