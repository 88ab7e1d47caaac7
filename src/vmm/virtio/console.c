#include "console.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../log.h"

#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define CTL_QUEUE_RX               2 /* device -> driver control */
#define CTL_QUEUE_TX               3 /* driver -> device control */
#define PORT_BUFFER                65536
#define CTL_PENDING                64
/* Two queues a port plus the control pair, all in the device's fixed
 * queues[] array. */
#define MAX_PORTS_BY_QUEUES (VIRTIO_MAX_QUEUES / 2 - 1)

enum {
	CTL_DEVICE_READY = 0,
	CTL_DEVICE_ADD = 1,
	CTL_PORT_READY = 3,
	CTL_PORT_OPEN = 6,
	CTL_PORT_NAME = 7,
};

struct ctl_msg {
	uint32_t id;
	uint16_t event;
	uint16_t value;
};

struct port {
	unsigned id;
	char name[65];
	char *socket_path;
	int listen_fd;
	int fd; /* the host peer, -1 when none */
	bool guest_ready;
	bool guest_open;  /* a guest process has the port open */
	bool reading;     /* fd is watched for EPOLLIN */
	uint8_t *pending; /* host bytes not yet in a guest buffer */
	uint32_t pend_off, pend_len;
	struct console *con;
};

struct console {
	struct virtio_dev *dev;
	struct evloop *loop;
	int kick_fd; /* vCPU threads ask the main thread to re-arm reads */
	unsigned nports;
	struct port ports[VMM_MAX_PORTS];
	struct ctl_msg ctl[CTL_PENDING];
	unsigned ctl_head, ctl_len;
	struct virtq_chain chain; /* scratch: too large for a vCPU stack */
};

static uint16_t rx_queue(unsigned port)
{
	return (uint16_t)(port == 0 ? 0 : 2 + 2 * port);
}

static uint16_t tx_queue(unsigned port)
{
	return (uint16_t)(port == 0 ? 1 : 3 + 2 * port);
}

/* -1 when q is a control queue; else the port and whether it is tx. */
static int port_of_queue(const struct console *c, uint16_t q, bool *tx)
{
	int port = q < 2 ? 0 : q < 4 ? -1 : (q - 2) / 2;
	*tx = q & 1;
	return port >= 0 && (unsigned)port < c->nports ? port : -1;
}

static bool pop(struct console *c, uint16_t q, int *rc)
{
	struct husk_error err = {0};
	*rc = virtq_pop(c->dev->mem, &c->dev->queues[q], &c->chain, &err);
	if (*rc < 0)
		virtio_dev_set_needs_reset(c->dev, err.msg);
	return *rc > 0;
}

/* Sends queued control messages while the driver has buffers for them. */
static void flush_control(struct console *c)
{
	struct virtq *q = &c->dev->queues[CTL_QUEUE_RX];
	int rc;
	while (c->ctl_len && q->ready && virtio_dev_live(c->dev) &&
	       pop(c, CTL_QUEUE_RX, &rc)) {
		struct ctl_msg *m = &c->ctl[c->ctl_head];
		uint8_t buf[8 + 64];
		uint32_t id = htole32(m->id);
		uint16_t ev = htole16(m->event), val = htole16(m->value);
		memcpy(buf, &id, 4);
		memcpy(buf + 4, &ev, 2);
		memcpy(buf + 6, &val, 2);
		uint32_t len = 8;
		if (m->event == CTL_PORT_NAME) {
			size_t n = strlen(c->ports[m->id].name);
			memcpy(buf + 8, c->ports[m->id].name, n);
			len += (uint32_t)n;
		}
		uint64_t w =
		    virtq_chain_write(c->dev->mem, &c->chain, 0, buf, len);
		vmm_debug("console: control to driver: id %u event %u value "
		          "%u (%llu bytes)",
		          m->id, m->event, m->value, (unsigned long long)w);
		virtio_dev_complete(c->dev, CTL_QUEUE_RX, c->chain.head,
		                    (uint32_t)w);
		c->ctl_head = (c->ctl_head + 1) % CTL_PENDING;
		c->ctl_len--;
	}
}

static void send_control(struct console *c, uint32_t id, uint16_t event,
                         uint16_t value)
{
	if (c->ctl_len == CTL_PENDING) {
		virtio_dev_set_needs_reset(c->dev, "control queue starved");
		return;
	}
	c->ctl[(c->ctl_head + c->ctl_len++) % CTL_PENDING] =
	    (struct ctl_msg){id, event, value};
	flush_control(c);
}

static void kick_main_thread(struct console *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->kick_fd, &one, sizeof(one));
	(void)n;
}

/* Moves pending host bytes into the guest's receive buffers. Only while a
 * guest process has the port open: Linux discards data that arrives on a
 * port nobody has open, and the host's bytes must not be lost. */
static void deliver_rx(struct port *p)
{
	struct console *c = p->con;
	uint16_t q = rx_queue(p->id);
	int rc;
	while (p->pend_len && p->guest_open && c->dev->queues[q].ready &&
	       virtio_dev_live(c->dev) && pop(c, q, &rc)) {
		uint64_t w =
		    virtq_chain_write(c->dev->mem, &c->chain, 0,
		                      p->pending + p->pend_off, p->pend_len);
		virtio_dev_complete(c->dev, q, c->chain.head, (uint32_t)w);
		vmm_debug("console: port %s: %llu bytes to the guest", p->name,
		          (unsigned long long)w);
		p->pend_off += (uint32_t)w;
		p->pend_len -= (uint32_t)w;
	}
	if (!p->pend_len)
		p->pend_off = 0;
}

static void disconnect(struct port *p)
{
	if (p->fd < 0)
		return;
	if (p->reading)
		evloop_unwatch(p->con->loop, p->fd);
	close(p->fd);
	p->fd = -1;
	p->reading = false;
	p->pend_len = p->pend_off = 0;
	if (p->guest_ready)
		send_control(p->con, p->id, CTL_PORT_OPEN, 0);
}

/* Writes everything the guest queued on the port to the host peer. */
static void drain_tx(struct port *p)
{
	struct console *c = p->con;
	uint16_t q = tx_queue(p->id);
	int rc;
	while (p->fd >= 0 && c->dev->queues[q].ready &&
	       virtio_dev_live(c->dev) && pop(c, q, &rc)) {
		/* A failed write disconnects, and the PORT_OPEN(0) that sends
		 * pops the control queue into the same c->chain: keep this
		 * chain's head, and read no more of c->chain after that.
		 * Completing c->chain.head gave the driver the control
		 * buffer's id on this queue and lost the transmit chain. */
		uint16_t head = c->chain.head;
		for (unsigned i = 0; p->fd >= 0 && i < c->chain.n; i++) {
			const struct virtq_buf *b = &c->chain.buf[i];
			if (b->device_writable)
				break;
			const uint8_t *src =
			    guest_ptr(c->dev->mem, b->addr, b->len);
			for (uint32_t done = 0; src && done < b->len;) {
				ssize_t n =
				    write(p->fd, src + done, b->len - done);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					disconnect(p);
					break;
				}
				done += (uint32_t)n;
			}
		}
		virtio_dev_complete(c->dev, q, head, 0);
	}
}

static void handle_control(struct console *c, const struct ctl_msg *m)
{
	vmm_debug("console: control from driver: id %u event %u value %u",
	          m->id, m->event, m->value);
	if (m->event == CTL_DEVICE_READY && m->value == 1) {
		for (unsigned i = 0; i < c->nports; i++)
			send_control(c, i, CTL_DEVICE_ADD, 1);
		return;
	}
	if (m->id >= c->nports)
		return; /* a port we never offered: ignored */
	struct port *p = &c->ports[m->id];
	if (m->event == CTL_PORT_READY && m->value == 1) {
		p->guest_ready = true;
		send_control(c, p->id, CTL_PORT_NAME, 1);
		send_control(c, p->id, CTL_PORT_OPEN, p->fd >= 0);
	}
	if (m->event == CTL_PORT_OPEN) {
		p->guest_open = m->value == 1;
		deliver_rx(p);
		if (!p->pend_len && p->fd >= 0 && !p->reading)
			kick_main_thread(c);
	}
}

static void console_notify(struct virtio_dev *d, uint16_t q)
{
	struct console *c = d->priv;
	int rc;
	if (q == CTL_QUEUE_TX) {
		while (pop(c, q, &rc)) {
			uint8_t raw[8];
			struct ctl_msg m = {0};
			if (virtq_chain_read(d->mem, &c->chain, 0, raw, 8) ==
			    8) {
				memcpy(&m.id, raw, 4);
				memcpy(&m.event, raw + 4, 2);
				memcpy(&m.value, raw + 6, 2);
				m.id = le32toh(m.id);
				m.event = le16toh(m.event);
				m.value = le16toh(m.value);
			}
			virtio_dev_complete(d, q, c->chain.head, 0);
			handle_control(c, &m);
		}
		return;
	}
	if (q == CTL_QUEUE_RX) {
		flush_control(c);
		return;
	}
	bool tx;
	int port = port_of_queue(c, q, &tx);
	if (port < 0)
		return;
	struct port *p = &c->ports[port];
	if (tx) {
		drain_tx(p);
	} else {
		deliver_rx(p);
		if (!p->pend_len && p->fd >= 0 && !p->reading)
			kick_main_thread(c);
	}
}

static void on_peer_readable(void *opaque, uint32_t events)
{
	struct port *p = opaque;
	struct console *c = p->con;
	pthread_mutex_lock(&c->dev->lock);
	if (p->fd >= 0 && !p->pend_len) {
		ssize_t n = read(p->fd, p->pending, PORT_BUFFER);
		if (n > 0) {
			p->pend_len = (uint32_t)n;
			p->pend_off = 0;
			deliver_rx(p);
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN) ||
		           (events & (EPOLLHUP | EPOLLERR))) {
			disconnect(p);
		}
	}
	/* Stop reading until the guest has room again (console_notify).
	 * Unwatched, not watched for no events: epoll reports EPOLLHUP
	 * whatever the mask, so a peer that wrote and closed before the
	 * guest took its bytes kept the main thread spinning here.
	 * start_reading() adds the fd back. */
	if (p->fd >= 0 && p->pend_len && p->reading) {
		evloop_unwatch(c->loop, p->fd);
		p->reading = false;
	}
	pthread_mutex_unlock(&c->dev->lock);
}

static void start_reading(struct port *p)
{
	if (p->fd >= 0 && !p->reading && !p->pend_len &&
	    evloop_watch(p->con->loop, p->fd, EPOLLIN, on_peer_readable, p) ==
	        0)
		p->reading = true;
}

static void on_kick(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(c->kick_fd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&c->dev->lock);
	for (unsigned i = 0; i < c->nports; i++)
		start_reading(&c->ports[i]);
	pthread_mutex_unlock(&c->dev->lock);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct port *p = opaque;
	(void)events;
	int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	pthread_mutex_lock(&p->con->dev->lock);
	if (p->fd >= 0) {
		close(fd); /* one peer per port */
	} else {
		vmm_debug("console: port %s: host peer connected", p->name);
		p->fd = fd;
		start_reading(p);
		if (p->guest_ready)
			send_control(p->con, p->id, CTL_PORT_OPEN, 1);
		drain_tx(p);
	}
	pthread_mutex_unlock(&p->con->dev->lock);
}

static int listen_on(struct port *p, const char *path, struct husk_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return husk_err(err, ENAMETOOLONG,
		                "port %s: socket path too "
		                "long",
		                p->name);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_err_errno(err, errno, "port %s: socket", p->name);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		int e = errno;
		close(fd);
		return husk_err_errno(err, e, "port %s: %s", p->name, path);
	}
	p->listen_fd = fd;
	p->socket_path = strdup(path);
	return 0;
}

static void console_config_read(struct virtio_dev *d, uint32_t offset,
                                uint8_t *data, uint32_t len)
{
	struct console *c = d->priv;
	uint8_t cfg[12] = {0}; /* cols, rows, max_nr_ports, emerg_wr */
	uint32_t max = htole32(c->nports);
	memcpy(cfg + 4, &max, 4);
	memcpy(data, cfg + offset, len);
}

static void console_reset(struct virtio_dev *d)
{
	struct console *c = d->priv;
	c->ctl_len = 0;
	for (unsigned i = 0; i < c->nports; i++)
		c->ports[i].guest_ready = c->ports[i].guest_open = false;
}

static const struct virtio_dev_ops console_ops = {
    .name = "console",
    .device_id = VIRTIO_ID_CONSOLE,
    .config_read = console_config_read,
    .notify = console_notify,
    .reset = console_reset,
};

int virtio_console_init(struct virtio_dev *d, const struct guest_mem *mem,
                        const struct vmm_port *ports, unsigned nports,
                        struct evloop *loop, struct husk_error *err)
{
	/* More ports than queues[] has room for would let the transport
	 * (QueueSel < num_queues) reach past the array into the rest of
	 * struct virtio_dev; device.h sizes queues[] for VMM_MAX_PORTS. */
	unsigned max_ports = VMM_MAX_PORTS < MAX_PORTS_BY_QUEUES
	                         ? VMM_MAX_PORTS
	                         : MAX_PORTS_BY_QUEUES;
	if (nports == 0 || nports > max_ports)
		return husk_err(err, EINVAL, "console: 1..%u ports", max_ports);
	/* A guest write to a peer that has gone (drain_tx) must fail with
	 * EPIPE and disconnect the port, not end husk-vmm: SIGPIPE's default
	 * action is to terminate. write() stays (not send(MSG_NOSIGNAL)): a
	 * port's fd may be a pipe, and the sandbox allows write, not sendto. */
	struct sigaction old, ign = {.sa_handler = SIG_IGN};
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		sigaction(SIGPIPE, &ign, NULL);
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return husk_err(err, ENOMEM, "console");
	c->loop = loop;
	c->nports = nports;
	c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	virtio_dev_init(d, &console_ops, c, mem, (uint16_t)(2 * (nports + 1)),
	                1ULL << VIRTIO_CONSOLE_F_MULTIPORT, 12);
	c->dev = d;
	for (unsigned i = 0; i < nports; i++)
		c->ports[i].fd = c->ports[i].listen_fd = -1;
	int rc = c->kick_fd < 0 ? husk_err_errno(err, errno, "eventfd") : 0;
	if (rc == 0 && evloop_watch(loop, c->kick_fd, EPOLLIN, on_kick, c) < 0)
		rc = husk_err(err, ENOSPC, "console: event loop full");
	for (unsigned i = 0; rc == 0 && i < nports; i++) {
		struct port *p = &c->ports[i];
		p->id = i;
		p->con = c;
		snprintf(p->name, sizeof(p->name), "%s", ports[i].name);
		p->pending = malloc(PORT_BUFFER);
		if (!p->pending) {
			rc = husk_err(err, ENOMEM, "console buffers");
			break;
		}
		if (ports[i].socket) {
			rc = listen_on(p, ports[i].socket, err);
			if (rc == 0 && evloop_watch(loop, p->listen_fd, EPOLLIN,
			                            on_accept, p) < 0)
				rc = husk_err(err, ENOSPC, "event loop full");
		} else {
			p->fd = fcntl(ports[i].fd, F_DUPFD_CLOEXEC, 3);
			if (p->fd < 0)
				rc =
				    husk_err_errno(err, errno, "port %s: fd %d",
				                   p->name, ports[i].fd);
			else
				start_reading(p);
		}
	}
	if (rc < 0)
		virtio_console_destroy(d);
	return rc;
}

void virtio_console_destroy(struct virtio_dev *d)
{
	struct console *c = d->priv;
	if (!c)
		return;
	/* Out of the caller's loop before closing: a port's fd is a dup of an
	 * inherited one, and epoll keeps reporting its open file (into freed
	 * memory) for as long as the original stays open. */
	for (unsigned i = 0; i < c->nports; i++) {
		struct port *p = &c->ports[i];
		if (p->fd >= 0) {
			evloop_unwatch(c->loop, p->fd);
			close(p->fd);
		}
		if (p->listen_fd >= 0) {
			evloop_unwatch(c->loop, p->listen_fd);
			close(p->listen_fd);
		}
		if (p->socket_path) {
			unlink(p->socket_path);
			free(p->socket_path);
		}
		free(p->pending);
	}
	if (c->kick_fd >= 0) {
		evloop_unwatch(c->loop, c->kick_fd);
		close(c->kick_fd);
	}
	free(c);
	d->priv = NULL;
}
