/* virtio-console (multiport) against a fake guest, a fake transport and
 * real host peers: guest_mem_wrap over a buffer holding every queue's rings
 * and buffers, written as the Linux driver would write them; each port bound
 * to one end of a socketpair (fd:N, the test holds the other end as the
 * host peer) or to a unix socket in a mkdtemp directory that the test
 * connects to. The device's main-thread side (peer readable, accept, kick)
 * runs through evloop_run_once; nothing waits on time except poll() with a
 * limit on the host peer. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/evloop.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/options.h"
#include "../../src/vmm/virtio/console.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

/* Guest memory: queue q's rings in [q * 4 KiB, q * 4 KiB + 3 KiB), its
 * buffers from DATA_BASE: descriptor i always points into slot i. */
#define MEM_SIZE   0x40000ULL
#define QNUM       16
#define SLOT       512u
#define DATA_BASE  0x10000ULL
#define DESC(q)    (0x1000ULL * (q))
#define AVAIL(q)   (0x1000ULL * (q) + 0x400)
#define USED(q)    (0x1000ULL * (q) + 0x800)
#define DATA(q, i) (DATA_BASE + 0x2000ULL * (q) + (uint64_t)SLOT * (i))

#define CTL_RX 2 /* device -> driver control */
#define CTL_TX 3 /* driver -> device control */

#define F_MULTIPORT 1
#define WR          VIRTQ_DESC_F_WRITE

enum {
	DEVICE_READY = 0,
	DEVICE_ADD = 1,
	PORT_READY = 3,
	PORT_OPEN = 6,
	PORT_NAME = 7,
};

struct drv_queue {
	uint16_t avail_idx; /* what the driver published */
	uint16_t next_desc; /* the next descriptor it fills */
	uint16_t seen;      /* used entries it has looked at */
};

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	struct evloop loop;
	bool started;
	unsigned nports;
	struct vmm_port ports[VMM_MAX_PORTS + 1];
	int dev_end[VMM_MAX_PORTS + 1]; /* what fd:N names, -1 for unix: */
	int peer[VMM_MAX_PORTS + 1];    /* the host peer, -1 when none */
	char names[VMM_MAX_PORTS + 1][32];
	char paths[VMM_MAX_PORTS + 1][256];
	char dir[64];
	unsigned used_irqs, config_irqs;
	struct drv_queue q[VIRTIO_MAX_QUEUES];
};

struct ctl {
	uint32_t id;
	uint16_t event, value;
	uint32_t len; /* the used length */
	char name[SLOT];
};

static uint16_t rxq(unsigned port)
{
	return (uint16_t)(port == 0 ? 0 : 2 + 2 * port);
}

static uint16_t txq(unsigned port)
{
	return (uint16_t)(port == 0 ? 1 : 3 + 2 * port);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 29 + (i >> 8) + 7);
}

/* ---- the fake transport ---- */

static void count_irq(struct virtio_dev *d, uint32_t reason)
{
	struct fx *f = d->transport;
	drv_count_irq(reason, &f->used_irqs, &f->config_irqs);
}

static void notify(struct fx *f, uint16_t q)
{
	drv_kick(&f->d, q);
}

/* What the driver sets up before QueueReady, and the transport checks. */
static void setup_queue(struct fx *f, uint16_t q)
{
	struct virtq *vq = &f->d.queues[q];
	memset(f->buf + DESC(q), 0, 0x1000);
	f->q[q] = (struct drv_queue){0};
	drv_queue_layout(vq, QNUM, DESC(q), AVAIL(q), USED(q));
	drv_queue_ready(&f->m, vq);
}

/* The driver's side of start-up, after a successful init: features, every
 * queue, DRIVER_OK. */
static void go_live(struct fx *f)
{
	assert_true(f->d.num_queues <= VIRTIO_MAX_QUEUES);
	f->d.transport = f;
	f->d.raise_irq = count_irq;
	f->d.driver_features =
	    (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MULTIPORT);
	for (uint16_t q = 0; q < f->d.num_queues; q++)
		setup_queue(f, q);
	f->d.status = DRV_LIVE;
}

static int init(struct fx *f, struct husk_error *e)
{
	return virtio_console_init(&f->d, &f->m, f->ports, f->nports, &f->loop,
	                           e);
}

static void start(struct fx *f)
{
	struct husk_error e = {0};
	if (init(f, &e) != 0)
		fail_msg("virtio_console_init: %s", e.msg);
	f->started = true;
	go_live(f);
}

/* What the transport does when the driver writes status 0. */
static void transport_reset(struct fx *f)
{
	pthread_mutex_lock(&f->d.lock);
	f->d.ops->reset(&f->d);
	for (unsigned i = 0; i < f->d.num_queues; i++)
		virtq_reset(&f->d.queues[i]);
	f->d.status = 0;
	f->d.driver_features = 0;
	f->d.interrupt_status = 0;
	pthread_mutex_unlock(&f->d.lock);
}

/* ---- ports ---- */

static void add_fd_port(struct fx *f, const char *name)
{
	unsigned i = f->nports++;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	snprintf(f->names[i], sizeof(f->names[i]), "%s", name);
	f->dev_end[i] = sv[0];
	f->peer[i] = sv[1];
	f->ports[i] = (struct vmm_port){f->names[i], NULL, sv[0]};
}

static void add_unix_port(struct fx *f, const char *name)
{
	unsigned i = f->nports++;
	snprintf(f->names[i], sizeof(f->names[i]), "%s", name);
	snprintf(f->paths[i], sizeof(f->paths[i]), "%s/%s.sock", f->dir, name);
	f->ports[i] = (struct vmm_port){f->names[i], f->paths[i], -1};
}

static void close_ports(struct fx *f)
{
	for (unsigned i = 0; i <= VMM_MAX_PORTS; i++) {
		if (f->dev_end[i] >= 0)
			close(f->dev_end[i]);
		if (f->peer[i] >= 0)
			close(f->peer[i]);
		f->dev_end[i] = f->peer[i] = -1;
	}
	f->nports = 0;
}

static void stop(struct fx *f)
{
	if (f->started)
		virtio_console_destroy(&f->d);
	f->started = false;
}

/* ---- the event loop ---- */

/* Runs the main thread's callbacks until nothing is ready. Everything the
 * tests do on AF_UNIX sockets is ready at once (write and connect complete
 * synchronously), so no waiting is needed; a loop that never goes quiet is
 * a main thread spinning. */
static void pump(struct fx *f)
{
	for (int i = 0; i < 64; i++) {
		int n = evloop_run_once(&f->loop, 0);
		assert_true(n >= 0);
		if (n == 0)
			return;
	}
	fail_msg("the event loop never goes quiet (the main thread spins)");
}

/* A client of port i's unix socket, accepted by the device. */
static int connect_port(struct fx *f, unsigned i)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(f->paths[i]);
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->paths[i], n + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect %s: %s", sa.sun_path, strerror(errno));
	pump(f);
	return s;
}

/* ---- the host peer ---- */

static void peer_send(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* Reads exactly n bytes (poll with a limit, never a sleep). */
static void peer_expect(int fd, const void *want, size_t n)
{
	uint8_t *got = malloc(n + 1);
	assert_non_null(got);
	size_t have = 0;
	while (have < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) != 1)
			fail_msg("host peer: %zu of %zu bytes came", have, n);
		ssize_t r = read(fd, got + have, n - have);
		if (r <= 0)
			fail_msg("host peer: read %zd after %zu of %zu bytes",
			         r, have, n);
		have += (size_t)r;
	}
	assert_memory_equal(got, want, n);
	free(got);
}

static void peer_expect_nothing(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
}

/* The device closed its end: EOF, within a limit. */
static void peer_expect_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	char c;
	assert_int_equal(read(fd, &c, 1), 0);
}

/* ---- the fake driver ---- */

static void set_desc(struct fx *f, uint16_t q, uint16_t i, uint64_t addr,
                     uint32_t len, uint16_t flags, uint16_t next)
{
	drv_set_desc(&f->m, DESC(q), i, addr, len, flags, next);
}

static void offer(struct fx *f, uint16_t q, uint16_t head)
{
	drv_offer(&f->m, AVAIL(q), QNUM, &f->q[q].avail_idx, head);
}

static uint16_t take_desc(struct fx *f, uint16_t q)
{
	uint16_t i = f->q[q].next_desc;
	f->q[q].next_desc = (uint16_t)((i + 1) % QNUM);
	return i;
}

/* One device-writable buffer of len bytes (in its descriptor's slot). */
static uint16_t offer_in(struct fx *f, uint16_t q, uint32_t len)
{
	assert_true(len <= SLOT);
	uint16_t i = take_desc(f, q);
	memset(f->buf + DATA(q, i), 0xee, SLOT);
	set_desc(f, q, i, DATA(q, i), len, WR, 0);
	offer(f, q, i);
	return i;
}

/* A device-readable chain holding p, one descriptor per SLOT bytes. */
static uint16_t offer_out(struct fx *f, uint16_t q, const void *p, size_t n)
{
	const uint8_t *src = p;
	unsigned ndesc = n ? (unsigned)((n + SLOT - 1) / SLOT) : 1;
	uint16_t head = f->q[q].next_desc;
	for (unsigned k = 0; k < ndesc; k++) {
		uint16_t i = take_desc(f, q);
		size_t len = n - k * SLOT < SLOT ? n - k * SLOT : SLOT;
		bool more = k + 1 < ndesc;
		drv_put(&f->m, DATA(q, i), src + k * SLOT, len);
		set_desc(f, q, i, DATA(q, i), (uint32_t)len,
		         more ? VIRTQ_DESC_F_NEXT : 0,
		         more ? f->q[q].next_desc : 0);
	}
	offer(f, q, head);
	return head;
}

static uint16_t used_idx(struct fx *f, uint16_t q)
{
	return drv_used_idx(&f->m, USED(q));
}

/* The next used entry the driver has not looked at yet. */
static bool next_used(struct fx *f, uint16_t q, uint32_t *id, uint32_t *len)
{
	struct drv_queue *d = &f->q[q];
	if (d->seen == used_idx(f, q))
		return false;
	*id = drv_used_id(&f->m, USED(q), QNUM, d->seen);
	*len = drv_used_len(&f->m, USED(q), QNUM, d->seen);
	d->seen++;
	assert_true(*id < QNUM);
	return true;
}

/* ---- control messages ---- */

static void ctl_bufs(struct fx *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		offer_in(f, CTL_RX, SLOT);
}

static void put_ctl(uint8_t raw[8], uint32_t id, uint16_t event, uint16_t value)
{
	uint32_t i = htole32(id);
	uint16_t e = htole16(event), v = htole16(value);
	memcpy(raw, &i, 4);
	memcpy(raw + 4, &e, 2);
	memcpy(raw + 6, &v, 2);
}

/* The driver sends one control message; the device takes it at once. */
static void ctl_send(struct fx *f, uint32_t id, uint16_t event, uint16_t value)
{
	uint8_t raw[8];
	put_ctl(raw, id, event, value);
	uint16_t before = used_idx(f, CTL_TX);
	uint16_t head = offer_out(f, CTL_TX, raw, 8);
	notify(f, CTL_TX);
	uint32_t got, len;
	assert_int_equal(used_idx(f, CTL_TX), (uint16_t)(before + 1));
	assert_true(next_used(f, CTL_TX, &got, &len));
	assert_int_equal(got, head);
	assert_int_equal(len, 0);
}

static bool ctl_recv(struct fx *f, struct ctl *m)
{
	uint32_t id, len;
	if (!next_used(f, CTL_RX, &id, &len))
		return false;
	assert_true(len >= 8 && len <= SLOT);
	uint8_t raw[SLOT];
	drv_get(&f->m, DATA(CTL_RX, id), raw, len);
	memset(m, 0, sizeof(*m));
	memcpy(&m->id, raw, 4);
	memcpy(&m->event, raw + 4, 2);
	memcpy(&m->value, raw + 6, 2);
	m->id = le32toh(m->id);
	m->event = le16toh(m->event);
	m->value = le16toh(m->value);
	m->len = len;
	memcpy(m->name, raw + 8, len - 8);
	return true;
}

static void expect_ctl(struct fx *f, uint32_t id, uint16_t event,
                       uint16_t value)
{
	struct ctl m;
	if (!ctl_recv(f, &m))
		fail_msg("no control message (wanted id %u event %u value %u)",
		         id, event, value);
	if (m.id != id || m.event != event || m.value != value)
		fail_msg("control message id %u event %u value %u, wanted id "
		         "%u event %u value %u",
		         m.id, m.event, m.value, id, event, value);
	if (event != PORT_NAME)
		assert_int_equal(m.len, 8);
}

static void expect_no_ctl(struct fx *f)
{
	struct ctl m;
	if (ctl_recv(f, &m))
		fail_msg("unexpected control message id %u event %u value %u",
		         m.id, m.event, m.value);
}

static void expect_port_name(struct fx *f, unsigned port)
{
	struct ctl m;
	assert_true(ctl_recv(f, &m));
	assert_int_equal(m.id, port);
	assert_int_equal(m.event, PORT_NAME);
	assert_int_equal(m.len, 8 + strlen(f->names[port]));
	assert_memory_equal(m.name, f->names[port], strlen(f->names[port]));
}

/* DEVICE_READY and every port's DEVICE_ADD. */
static void device_ready(struct fx *f)
{
	ctl_bufs(f, f->nports);
	ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	for (unsigned i = 0; i < f->nports; i++)
		expect_ctl(f, i, DEVICE_ADD, 1);
	expect_no_ctl(f);
}

/* PORT_READY and its answer: the name, and whether a host peer is there. */
static void port_ready(struct fx *f, unsigned port, bool connected)
{
	ctl_bufs(f, 2);
	ctl_send(f, port, PORT_READY, 1);
	expect_port_name(f, port);
	expect_ctl(f, port, PORT_OPEN, connected);
	expect_no_ctl(f);
}

/* The whole handshake, then a guest process opens every port. */
static void open_all(struct fx *f)
{
	device_ready(f);
	for (unsigned i = 0; i < f->nports; i++)
		port_ready(f, i, f->peer[i] >= 0);
	for (unsigned i = 0; i < f->nports; i++)
		ctl_send(f, i, PORT_OPEN, 1);
}

/* ---- port data ---- */

static void rx_bufs(struct fx *f, unsigned port, unsigned n, uint32_t len)
{
	for (unsigned i = 0; i < n; i++)
		offer_in(f, rxq(port), len);
}

/* Appends what the device put in port's receive buffers since last time;
 * the used lengths in lens (when not NULL). Returns the bytes. */
static size_t rx_take(struct fx *f, unsigned port, uint8_t *out, size_t max,
                      uint32_t *lens, unsigned *nlens)
{
	size_t have = 0;
	unsigned n = 0;
	uint32_t id, len;
	while (next_used(f, rxq(port), &id, &len)) {
		assert_true(len <= SLOT && have + len <= max);
		drv_get(&f->m, DATA(rxq(port), id), out + have, len);
		have += len;
		if (lens)
			lens[n] = len;
		n++;
	}
	if (nlens)
		*nlens = n;
	return have;
}

static void expect_rx(struct fx *f, unsigned port, const void *want, size_t n)
{
	uint8_t got[4096];
	assert_true(n <= sizeof(got));
	assert_int_equal(rx_take(f, port, got, sizeof(got), NULL, NULL), n);
	assert_memory_equal(got, want, n);
}

static void expect_no_rx(struct fx *f, unsigned port)
{
	uint8_t got[4096];
	assert_int_equal(rx_take(f, port, got, sizeof(got), NULL, NULL), 0);
}

/* ---- fixture ---- */

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	unsigned n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	bool empty = true;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct husk_error e = {0};
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0 ||
	    evloop_init(&f->loop, &e) != 0)
		return -1;
	for (unsigned i = 0; i <= VMM_MAX_PORTS; i++)
		f->dev_end[i] = f->peer[i] = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/husk-console-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	vmm_log_set_quiet(false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	stop(f);
	evloop_destroy(&f->loop);
	close_ports(f);
	/* Every socket file went with virtio_console_destroy. */
	bool empty = dir_empty(f->dir);
	rmdir(f->dir);
	free(f->buf);
	free(f);
	vmm_log_set_quiet(false);
	return empty ? 0 : -1;
}

/* ---- configuration ---- */

static void config_space(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "a");
	add_fd_port(f, "b");
	add_unix_port(f, "c");
	start(f);

	assert_int_equal(f->d.ops->device_id, VIRTIO_ID_CONSOLE);
	assert_true(f->d.device_features & (1ULL << F_MULTIPORT));
	assert_true(f->d.device_features & (1ULL << VIRTIO_F_VERSION_1));
	assert_int_equal(f->d.config_size, 12);
	assert_int_equal(f->d.num_queues, 2 * (3 + 1));

	uint8_t cfg[12];
	memset(cfg, 0xaa, sizeof(cfg));
	f->d.ops->config_read(&f->d, 0, cfg, 12);
	uint32_t max;
	memcpy(&max, cfg + 4, 4);
	assert_int_equal(le32toh(max), 3);
	/* cols, rows and emerg_wr: none of that is offered. */
	assert_int_equal(cfg[0] | cfg[1] | cfg[2] | cfg[3], 0);
	assert_int_equal(cfg[8] | cfg[9] | cfg[10] | cfg[11], 0);
	/* A narrow read inside the field. */
	uint8_t b = 0xaa;
	f->d.ops->config_read(&f->d, 4, &b, 1);
	assert_int_equal(b, 3);
}

/* ---- the control handshake ---- */

static void handshake(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "org.husk.agent");
	add_unix_port(f, "logs");
	start(f);

	/* A DEVICE_READY that reports failure gets nothing. */
	ctl_bufs(f, 4);
	ctl_send(f, 0xffffffff, DEVICE_READY, 0);
	expect_no_ctl(f);

	ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	expect_ctl(f, 0, DEVICE_ADD, 1);
	expect_ctl(f, 1, DEVICE_ADD, 1);
	expect_no_ctl(f);
	assert_true(f->used_irqs > 0);

	/* Port 0 has its fd peer; port 1's socket has no client yet. */
	port_ready(f, 0, true);
	port_ready(f, 1, false);

	/* PORT_READY with value 0 (the driver failed to add the port). */
	ctl_bufs(f, 2);
	ctl_send(f, 0, PORT_READY, 0);
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);
}

static void control_waits_for_buffers(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	add_fd_port(f, "p1");
	add_fd_port(f, "p2");
	start(f);

	/* No control receive buffers: the answers wait in the device. */
	ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	expect_no_ctl(f);

	ctl_bufs(f, 1);
	notify(f, CTL_RX);
	expect_ctl(f, 0, DEVICE_ADD, 1);
	expect_no_ctl(f);

	/* Queued behind the remaining DEVICE_ADDs, in order. */
	ctl_send(f, 2, PORT_READY, 1);
	expect_no_ctl(f);
	ctl_bufs(f, 2);
	notify(f, CTL_RX);
	expect_ctl(f, 1, DEVICE_ADD, 1);
	expect_ctl(f, 2, DEVICE_ADD, 1);
	expect_no_ctl(f);
	ctl_bufs(f, 4);
	notify(f, CTL_RX);
	expect_port_name(f, 2);
	expect_ctl(f, 2, PORT_OPEN, 1);
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);
}

/* ---- host -> guest ---- */

static void host_bytes_wait_for_port_open(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	start(f);
	device_ready(f);
	port_ready(f, 0, true);

	rx_bufs(f, 0, 4, SLOT);
	notify(f, rxq(0));
	peer_send(f->peer[0], "hello", 5);
	pump(f);
	/* Ready, with buffers, but no guest process has it open. */
	expect_no_rx(f, 0);
	assert_int_equal(used_idx(f, rxq(0)), 0);

	ctl_send(f, 0, PORT_OPEN, 1);
	uint8_t got[SLOT];
	uint32_t lens[4];
	unsigned n;
	assert_int_equal(rx_take(f, 0, got, sizeof(got), lens, &n), 5);
	assert_int_equal(n, 1);
	assert_int_equal(lens[0], 5);
	assert_memory_equal(got, "hello", 5);

	/* Open: the next bytes go straight through. */
	pump(f);
	peer_send(f->peer[0], "world!", 6);
	pump(f);
	expect_rx(f, 0, "world!", 6);

	/* The guest closes it: bytes wait again, then arrive on reopen. */
	ctl_send(f, 0, PORT_OPEN, 0);
	peer_send(f->peer[0], "later", 5);
	pump(f);
	expect_no_rx(f, 0);
	ctl_send(f, 0, PORT_OPEN, 1);
	expect_rx(f, 0, "later", 5);
	pump(f);
	peer_send(f->peer[0], "again", 5);
	pump(f);
	expect_rx(f, 0, "again", 5);
}

static void host_bytes_span_buffers(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	start(f);
	open_all(f);

	uint8_t data[1200], got[2048];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);

	rx_bufs(f, 0, 3, SLOT);
	peer_send(f->peer[0], data, sizeof(data));
	pump(f);
	uint32_t lens[8];
	unsigned n;
	assert_int_equal(rx_take(f, 0, got, sizeof(got), lens, &n),
	                 sizeof(data));
	assert_int_equal(n, 3);
	assert_int_equal(lens[0], SLOT);
	assert_int_equal(lens[1], SLOT);
	assert_int_equal(lens[2], sizeof(data) - 2 * SLOT);
	assert_memory_equal(got, data, sizeof(data));

	/* Fewer buffers than bytes: the rest waits for the driver's next
	 * buffers, in order, and nothing is lost or repeated. */
	rx_bufs(f, 0, 1, 100);
	peer_send(f->peer[0], data, sizeof(data));
	pump(f);
	assert_int_equal(rx_take(f, 0, got, sizeof(got), lens, &n), 100);
	assert_memory_equal(got, data, 100);
	/* More host bytes meanwhile stay behind the first ones. */
	peer_send(f->peer[0], "tail", 4);
	pump(f);
	expect_no_rx(f, 0);
	rx_bufs(f, 0, 3, SLOT);
	notify(f, rxq(0));
	size_t have = rx_take(f, 0, got, sizeof(got), lens, &n);
	assert_int_equal(have, sizeof(data) - 100);
	assert_int_equal(n, 3);
	assert_int_equal(lens[0], SLOT);
	assert_int_equal(lens[1], SLOT);
	assert_int_equal(lens[2], sizeof(data) - 100 - 2 * SLOT);
	assert_memory_equal(got, data + 100, sizeof(data) - 100);
	/* The driver's buffers made room: reading resumes. */
	pump(f);
	rx_bufs(f, 0, 1, SLOT);
	notify(f, rxq(0));
	pump(f);
	expect_rx(f, 0, "tail", 4);
}

/* ---- guest -> host ---- */

static void guest_bytes_reach_host(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	add_fd_port(f, "p1");
	start(f);
	open_all(f);

	uint16_t head = offer_out(f, txq(0), "ping\n", 5);
	notify(f, txq(0));
	peer_expect(f->peer[0], "ping\n", 5);
	uint32_t id, len;
	assert_true(next_used(f, txq(0), &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_false(next_used(f, txq(0), &id, &len));

	/* A chain of several descriptors, and two chains in one kick. */
	uint8_t data[1300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	offer_out(f, txq(0), data, sizeof(data));
	offer_out(f, txq(0), "!", 1);
	notify(f, txq(0));
	peer_expect(f->peer[0], data, sizeof(data));
	peer_expect(f->peer[0], "!", 1);
	assert_int_equal(used_idx(f, txq(0)), 3);

	/* Port 1 (queues 4 and 5) reaches its own peer, and only it. */
	offer_out(f, txq(1), "one", 3);
	notify(f, txq(1));
	peer_expect(f->peer[1], "one", 3);
	peer_expect_nothing(f->peer[0]);
	rx_bufs(f, 1, 1, SLOT);
	rx_bufs(f, 0, 1, SLOT);
	peer_send(f->peer[1], "back", 4);
	pump(f);
	expect_rx(f, 1, "back", 4);
	expect_no_rx(f, 0);
	peer_expect_nothing(f->peer[0]);
	peer_expect_nothing(f->peer[1]);
}

static void guest_writes_wait_for_peer(void **state)
{
	struct fx *f = *state;
	add_unix_port(f, "p0");
	start(f);
	device_ready(f);
	port_ready(f, 0, false);
	ctl_send(f, 0, PORT_OPEN, 1);

	/* Nobody listening: the chains stay in the queue, untouched. */
	offer_out(f, txq(0), "early ", 6);
	offer_out(f, txq(0), "bytes", 5);
	notify(f, txq(0));
	pump(f);
	assert_int_equal(used_idx(f, txq(0)), 0);

	ctl_bufs(f, 1);
	int c = connect_port(f, 0);
	f->peer[0] = c;
	peer_expect(c, "early bytes", 11);
	assert_int_equal(used_idx(f, txq(0)), 2);
	/* The driver hears the host side is there. */
	expect_ctl(f, 0, PORT_OPEN, 1);
	expect_no_ctl(f);

	/* And from now on both ways work at once. */
	offer_out(f, txq(0), "now", 3);
	notify(f, txq(0));
	peer_expect(c, "now", 3);
	rx_bufs(f, 0, 1, SLOT);
	peer_send(c, "reply", 5);
	pump(f);
	expect_rx(f, 0, "reply", 5);
}

/* ---- host peers come and go ---- */

static void peer_close_sends_port_closed(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	add_unix_port(f, "p1");
	start(f);
	open_all(f);

	ctl_bufs(f, 4);
	close(f->peer[0]);
	f->peer[0] = -1;
	pump(f);
	expect_ctl(f, 0, PORT_OPEN, 0);
	expect_no_ctl(f);

	/* A unix socket client: connect, leave, come back. */
	int c = connect_port(f, 1);
	expect_ctl(f, 1, PORT_OPEN, 1);
	close(c);
	pump(f);
	expect_ctl(f, 1, PORT_OPEN, 0);
	expect_no_ctl(f);
	c = connect_port(f, 1);
	f->peer[1] = c;
	expect_ctl(f, 1, PORT_OPEN, 1);
	expect_no_ctl(f);
	offer_out(f, txq(1), "hi", 2);
	notify(f, txq(1));
	peer_expect(c, "hi", 2);
	assert_int_equal(f->d.status, DRV_LIVE);
}

static void second_client_refused(void **state)
{
	struct fx *f = *state;
	add_unix_port(f, "p0");
	start(f);
	open_all(f);

	ctl_bufs(f, 4);
	int a = connect_port(f, 0);
	f->peer[0] = a;
	expect_ctl(f, 0, PORT_OPEN, 1);
	int b = connect_port(f, 0);
	peer_expect_eof(b);
	close(b);
	expect_no_ctl(f);

	/* The first client is still the peer, both ways. */
	offer_out(f, txq(0), "to a", 4);
	notify(f, txq(0));
	peer_expect(a, "to a", 4);
	rx_bufs(f, 0, 1, SLOT);
	peer_send(a, "from a", 6);
	pump(f);
	expect_rx(f, 0, "from a", 6);
}

/* Host bytes arrive, then the peer closes, before any guest process opens
 * the port: the bytes are kept, the main thread does not spin on the
 * hang-up meanwhile, and the close is seen once the bytes are delivered. */
static void peer_close_with_bytes_pending(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	start(f);
	device_ready(f);
	port_ready(f, 0, true);

	peer_send(f->peer[0], "last words", 10);
	close(f->peer[0]);
	f->peer[0] = -1;
	pump(f);
	pump(f);

	rx_bufs(f, 0, 1, SLOT);
	ctl_bufs(f, 2);
	ctl_send(f, 0, PORT_OPEN, 1);
	expect_rx(f, 0, "last words", 10);
	pump(f);
	expect_ctl(f, 0, PORT_OPEN, 0);
	expect_no_ctl(f);
}

/* The host peer went away and the guest writes before the main thread
 * noticed: the write fails (EPIPE) and the port disconnects; the VMM is
 * not killed by SIGPIPE (husk-vmm leaves SIGPIPE at its default). */
static void guest_write_after_peer_left(void **state)
{
	struct fx *f = *state;
	struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	add_fd_port(f, "p0");
	start(f);
	open_all(f);

	ctl_bufs(f, 2);
	close(f->peer[0]);
	f->peer[0] = -1;
	uint16_t head = offer_out(f, txq(0), "into the void", 13);
	notify(f, txq(0));
	uint32_t id, len;
	assert_true(next_used(f, txq(0), &id, &len));
	assert_int_equal(id, head);
	expect_ctl(f, 0, PORT_OPEN, 0);
	expect_no_ctl(f);
	pump(f);
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);
	sigaction(SIGPIPE, &old, NULL);
}

/* ---- hostile driver ---- */

static void control_for_unknown_port(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	add_fd_port(f, "p1");
	start(f);
	device_ready(f);

	ctl_bufs(f, 8);
	ctl_send(f, 2, PORT_READY, 1);
	ctl_send(f, 2, PORT_OPEN, 1);
	ctl_send(f, VMM_MAX_PORTS, PORT_READY, 1);
	ctl_send(f, 0x7fffffff, PORT_OPEN, 1);
	ctl_send(f, 0xffffffff, PORT_READY, 1);
	ctl_send(f, 0xffffffff, PORT_NAME, 1);
	ctl_send(f, 1, 0xffff, 0xffff); /* an unknown event */
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);
	assert_int_equal(f->config_irqs, 0);

	/* The real ports still work. */
	port_ready(f, 1, true);
}

static void control_message_too_short(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);
	ctl_bufs(f, 4);

	/* 4 bytes of a PORT_READY(0) and 1 byte: ignored. */
	uint8_t raw[8];
	put_ctl(raw, 0, PORT_READY, 1);
	offer_out(f, CTL_TX, raw, 4);
	offer_out(f, CTL_TX, raw, 1);
	/* A chain with no device-readable part at all. */
	offer_in(f, CTL_TX, 8);
	notify(f, CTL_TX);
	assert_int_equal(used_idx(f, CTL_TX), 3);
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);

	/* 7 of the 8 bytes of a DEVICE_READY: nothing either. */
	put_ctl(raw, 0xffffffff, DEVICE_READY, 1);
	offer_out(f, CTL_TX, raw, 7);
	notify(f, CTL_TX);
	expect_no_ctl(f);

	/* A longer message: the first 8 bytes count. */
	uint8_t longer[24] = {0};
	put_ctl(longer, 0xffffffff, DEVICE_READY, 1);
	offer_out(f, CTL_TX, longer, sizeof(longer));
	notify(f, CTL_TX);
	expect_ctl(f, 0, DEVICE_ADD, 1);
	expect_no_ctl(f);
	assert_int_equal(f->d.status, DRV_LIVE);
}

/* After NEEDS_RESET nothing moves: no chain on any queue is taken, host
 * bytes are not delivered, and no more interrupts come. */
static void assert_device_stopped(struct fx *f)
{
	uint16_t before[VIRTIO_MAX_QUEUES];
	unsigned irqs = f->used_irqs, cfg = f->config_irqs;
	for (uint16_t q = 0; q < f->d.num_queues; q++)
		before[q] = used_idx(f, q);
	rx_bufs(f, 0, 1, SLOT);
	offer_out(f, txq(0), "x", 1);
	for (uint16_t q = 0; q < f->d.num_queues; q++)
		notify(f, q);
	peer_send(f->peer[0], "y", 1);
	pump(f);
	for (uint16_t q = 0; q < f->d.num_queues; q++)
		assert_int_equal(used_idx(f, q), before[q]);
	peer_expect_nothing(f->peer[0]);
	assert_int_equal(f->used_irqs, irqs);
	assert_int_equal(f->config_irqs, cfg);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void control_tx_descriptor_loop(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);
	open_all(f);

	uint16_t i = take_desc(f, CTL_TX);
	uint8_t raw[8];
	put_ctl(raw, 0xffffffff, DEVICE_READY, 1);
	drv_put(&f->m, DATA(CTL_TX, i), raw, 8);
	set_desc(f, CTL_TX, i, DATA(CTL_TX, i), 8, VIRTQ_DESC_F_NEXT, i);
	offer(f, CTL_TX, i);
	uint16_t before = used_idx(f, CTL_TX);
	notify(f, CTL_TX);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->d.interrupt_status & VIRTIO_INT_CONFIG);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f, CTL_TX), before);
	assert_device_stopped(f);
}

static void control_tx_address_outside_ram(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);
	open_all(f);

	uint16_t i = take_desc(f, CTL_TX);
	set_desc(f, CTL_TX, i, MEM_SIZE - 4, 8, 0, 0);
	offer(f, CTL_TX, i);
	notify(f, CTL_TX);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_device_stopped(f);
}

static void control_rx_address_outside_ram(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);

	uint16_t i = take_desc(f, CTL_RX);
	set_desc(f, CTL_RX, i, 0xffffffffffff0000ULL, 64, WR, 0);
	offer(f, CTL_RX, i);
	ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f, CTL_RX), 0);
	assert_device_stopped(f);
}

/* A driver that keeps asking without giving control buffers breaks only
 * its own device. */
static void control_backlog_overflow(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);

	for (int i = 0; i < 200 && !(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	     i++)
		ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	ctl_bufs(f, 4);
	notify(f, CTL_RX);
	expect_no_ctl(f);
}

static void notify_beyond_ports(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	add_fd_port(f, "p0");
	start(f);
	open_all(f);
	assert_int_equal(f->d.num_queues, 4);

	/* Queues past the device's own: never set up, and ignored. */
	for (unsigned q = 4; q < VIRTIO_MAX_QUEUES; q++)
		notify(f, (uint16_t)q);
	notify(f, 0xffff);
	assert_int_equal(f->d.status, DRV_LIVE);
	assert_int_equal(f->config_irqs, 0);
	for (unsigned q = 4; q < VIRTIO_MAX_QUEUES; q++)
		assert_false(f->d.queues[q].ready);
	peer_expect_nothing(f->peer[0]);

	/* The port still works. */
	rx_bufs(f, 0, 1, SLOT);
	peer_send(f->peer[0], "ok", 2);
	pump(f);
	expect_rx(f, 0, "ok", 2);
}

/* ---- reset ---- */

static void reset_clears_guest_state(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	start(f);
	open_all(f);
	rx_bufs(f, 0, 1, SLOT);
	peer_send(f->peer[0], "one", 3);
	pump(f);
	expect_rx(f, 0, "one", 3);

	/* Answers still waiting for control buffers are dropped too. */
	ctl_send(f, 0xffffffff, DEVICE_READY, 1);
	transport_reset(f);
	go_live(f);

	/* The port is neither ready nor open for the new driver. */
	rx_bufs(f, 0, 2, SLOT);
	notify(f, rxq(0));
	peer_send(f->peer[0], "two", 3);
	pump(f);
	expect_no_rx(f, 0);
	ctl_bufs(f, 2);
	notify(f, CTL_RX);
	expect_no_ctl(f);

	/* A new handshake; the host's bytes were kept for it. */
	device_ready(f);
	port_ready(f, 0, true);
	expect_no_rx(f, 0);
	ctl_send(f, 0, PORT_OPEN, 1);
	expect_rx(f, 0, "two", 3);
	pump(f);
	peer_send(f->peer[0], "three", 5);
	pump(f);
	expect_rx(f, 0, "three", 5);
}

/* ---- init and teardown ---- */

static void assert_fd_still_ours(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	assert_true(fl >= 0);
	assert_true(fl & FD_CLOEXEC);
}

/* The main thread's loop holds nothing of a device that is gone: a peer
 * writing to an fd the device had dup'ed wakes nobody. */
static void assert_loop_forgot(struct fx *f, int peer)
{
	peer_send(peer, "?", 1);
	assert_int_equal(evloop_run_once(&f->loop, 0), 0);
}

static void init_rejects_port_counts(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	struct husk_error e = {0};
	unsigned fds = count_fds();

	assert_int_equal(
	    virtio_console_init(&f->d, &f->m, f->ports, 0, &f->loop, &e),
	    -EINVAL);
	assert_true(e.msg[0] != '\0');
	for (unsigned i = 0; i <= VMM_MAX_PORTS; i++)
		add_fd_port(f, "p");
	fds = count_fds();
	e = (struct husk_error){0};
	assert_int_equal(init(f, &e), -EINVAL);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(count_fds(), fds);
	for (unsigned i = 0; i <= VMM_MAX_PORTS; i++)
		assert_fd_still_ours(f->dev_end[i]);
	assert_int_equal(evloop_run_once(&f->loop, 0), 0);
}

static void init_rejects_bad_fd(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	struct husk_error e = {0};
	int bad = 1000;
	assert_int_equal(fcntl(bad, F_GETFD), -1);

	add_fd_port(f, "good");
	add_unix_port(f, "sock");
	add_fd_port(f, "bad");
	close(f->dev_end[2]);
	close(f->peer[2]);
	f->dev_end[2] = f->peer[2] = -1;
	f->ports[2].fd = bad;
	unsigned fds = count_fds();
	int rc = init(f, &e);
	assert_int_equal(rc, -EBADF);
	assert_non_null(strstr(e.msg, "bad"));
	assert_int_equal(count_fds(), fds);
	assert_fd_still_ours(f->dev_end[0]);
	assert_true(dir_empty(f->dir));
	assert_null(f->d.priv);
	assert_loop_forgot(f, f->peer[0]);

	/* A negative fd too. */
	f->ports[2].fd = -1;
	e = (struct husk_error){0};
	assert_true(init(f, &e) < 0);
	assert_int_equal(count_fds(), fds);
	assert_true(dir_empty(f->dir));
	assert_loop_forgot(f, f->peer[0]);
}

static void init_rejects_long_socket_path(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	struct husk_error e = {0};
	struct sockaddr_un sa;

	add_fd_port(f, "good");
	add_unix_port(f, "sock");
	add_unix_port(f, "long");
	/* Exactly sizeof(sun_path) characters: one too many for the NUL. */
	memset(f->paths[2], 'a', sizeof(sa.sun_path));
	memcpy(f->paths[2], f->dir, strlen(f->dir));
	f->paths[2][strlen(f->dir)] = '/';
	f->paths[2][sizeof(sa.sun_path)] = '\0';
	unsigned fds = count_fds();
	assert_int_equal(init(f, &e), -ENAMETOOLONG);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(count_fds(), fds);
	assert_fd_still_ours(f->dev_end[0]);
	assert_true(dir_empty(f->dir));
	assert_loop_forgot(f, f->peer[0]);

	/* One shorter fits, and is gone again after destroy. */
	f->paths[2][sizeof(sa.sun_path) - 1] = '\0';
	start(f);
	struct stat st;
	assert_int_equal(stat(f->paths[2], &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	stop(f);
	assert_true(dir_empty(f->dir));
	assert_int_equal(count_fds(), fds);
}

static void destroy_leaves_nothing(void **state)
{
	struct fx *f = *state;
	add_fd_port(f, "p0");
	add_unix_port(f, "p1");
	unsigned fds = count_fds();
	start(f);
	open_all(f);
	int c = connect_port(f, 1);
	f->peer[1] = c;
	rx_bufs(f, 0, 1, SLOT);
	peer_send(f->peer[0], "x", 1);
	pump(f);
	expect_rx(f, 0, "x", 1);

	stop(f);
	assert_int_equal(count_fds(), fds + 1); /* c */
	assert_true(dir_empty(f->dir));
	assert_fd_still_ours(f->dev_end[0]);
	peer_expect_eof(c);
	assert_loop_forgot(f, f->peer[0]);
}

/* Every port count init accepts has a queue for each of its ports: the
 * device's queue array is fixed (VIRTIO_MAX_QUEUES), and the transport
 * indexes it with any QueueSel below num_queues. */
static void every_port_count_fits(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	for (unsigned n = 1; n <= VMM_MAX_PORTS; n++) {
		for (unsigned i = 0; i < n; i++)
			add_fd_port(f, "p");
		unsigned fds = count_fds();
		struct husk_error e = {0};
		int rc = init(f, &e);
		if (rc < 0) {
			/* Refusing is only right when the queues cannot fit. */
			if (2 * (n + 1) <= VIRTIO_MAX_QUEUES)
				fail_msg("%u ports refused: %s", n, e.msg);
			assert_true(e.msg[0] != '\0');
			assert_int_equal(count_fds(), fds);
			close_ports(f);
			continue;
		}
		f->started = true;
		if (f->d.num_queues > VIRTIO_MAX_QUEUES)
			fail_msg("%u ports: %u queues, room for %u", n,
			         f->d.num_queues, VIRTIO_MAX_QUEUES);
		assert_int_equal(f->d.num_queues, 2 * (n + 1));
		go_live(f);
		uint32_t max;
		f->d.ops->config_read(&f->d, 4, (uint8_t *)&max, 4);
		assert_int_equal(le32toh(max), n);

		/* The last port works both ways, on its own queues. */
		unsigned last = n - 1;
		offer_out(f, txq(last), "end", 3);
		notify(f, txq(last));
		peer_expect(f->peer[last], "end", 3);
		ctl_send(f, last, PORT_OPEN, 1);
		rx_bufs(f, last, 1, SLOT);
		peer_send(f->peer[last], "back", 4);
		pump(f);
		expect_rx(f, last, "back", 4);
		for (unsigned i = 0; i < last; i++)
			peer_expect_nothing(f->peer[i]);

		stop(f);
		close_ports(f);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(config_space),
	    T(handshake),
	    T(control_waits_for_buffers),
	    T(host_bytes_wait_for_port_open),
	    T(host_bytes_span_buffers),
	    T(guest_bytes_reach_host),
	    T(guest_writes_wait_for_peer),
	    T(peer_close_sends_port_closed),
	    T(second_client_refused),
	    T(peer_close_with_bytes_pending),
	    T(guest_write_after_peer_left),
	    T(control_for_unknown_port),
	    T(control_message_too_short),
	    T(control_tx_descriptor_loop),
	    T(control_tx_address_outside_ram),
	    T(control_rx_address_outside_ram),
	    T(control_backlog_overflow),
	    T(notify_beyond_ports),
	    T(reset_clears_guest_state),
	    T(init_rejects_port_counts),
	    T(init_rejects_bad_fd),
	    T(init_rejects_long_socket_path),
	    T(destroy_leaves_nothing),
	    T(every_port_count_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
