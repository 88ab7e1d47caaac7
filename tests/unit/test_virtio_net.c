/* virtio-net against a fake guest (fake_driver.h) and a test backend that
 * records what the device tells it; the tests then move frames as the
 * backend's thread would, with virtio_net_tx_pop and virtio_net_rx_push. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/net_options.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/net.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

#define MEM_SIZE 0x80000ULL
#define QNUM     16
/* Receive queue rings, transmit queue rings, then buffers. */
#define RX_DESC  0x0000ULL
#define RX_AVAIL 0x1000ULL
#define RX_USED  0x2000ULL
#define TX_DESC  0x3000ULL
#define TX_AVAIL 0x4000ULL
#define TX_USED  0x5000ULL
#define DATA     0x10000ULL /* up to MEM_SIZE */
#define HDR      VIRTIO_NET_HDR_SIZE

#define WR VIRTQ_DESC_F_WRITE

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	unsigned used_irqs, config_irqs;
	unsigned tx_ready, rx_ready; /* what the backend was told */
	uint16_t avail_idx[2], next_desc[2];
	uint8_t frame[VIRTIO_NET_MAX_FRAME];
};

static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

static void count_irq(struct virtio_dev *d, uint32_t reason)
{
	struct fx *f = d->transport;
	drv_count_irq(reason, &f->used_irqs, &f->config_irqs);
}

static void be_tx_ready(void *opaque)
{
	((struct fx *)opaque)->tx_ready++;
}

static void be_rx_ready(void *opaque)
{
	((struct fx *)opaque)->rx_ready++;
}

static uint64_t q_desc(uint16_t q)
{
	return q == VIRTIO_NET_RXQ ? RX_DESC : TX_DESC;
}

static uint64_t q_avail(uint16_t q)
{
	return q == VIRTIO_NET_RXQ ? RX_AVAIL : TX_AVAIL;
}

static uint64_t q_used(uint16_t q)
{
	return q == VIRTIO_NET_RXQ ? RX_USED : TX_USED;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct husk_error e = {0};
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0)
		return -1;
	struct virtio_net_backend be = {f, be_tx_ready, be_rx_ready};
	if (virtio_net_init(&f->d, &f->m, mac, &be, &e) != 0)
		return -1;
	drv_go_live(&f->d, f, count_irq);
	for (uint16_t q = 0; q < 2; q++) {
		drv_queue_layout(&f->d.queues[q], QNUM, q_desc(q), q_avail(q),
		                 q_used(q));
		f->d.queues[q].indirect = true;
		drv_queue_ready(&f->m, &f->d.queues[q]);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_net_destroy(&f->d);
	virtio_net_destroy(&f->d); /* twice is harmless */
	free(f->buf);
	free(f);
	vmm_log_set_quiet(false);
	return 0;
}

static uint16_t offer(struct fx *f, uint16_t q, const struct drv_seg *s,
                      unsigned n)
{
	return drv_offer_chain(&f->m, q_desc(q), q_avail(q), QNUM,
	                       &f->avail_idx[q], &f->next_desc[q], s, n);
}

static uint16_t used_idx(struct fx *f, uint16_t q)
{
	return drv_used_idx(&f->m, q_used(q));
}

static uint32_t used_len(struct fx *f, uint16_t q, uint16_t i)
{
	return drv_used_len(&f->m, q_used(q), QNUM, i);
}

static uint32_t used_id(struct fx *f, uint16_t q, uint16_t i)
{
	return drv_used_id(&f->m, q_used(q), QNUM, i);
}

/* A frame of len bytes at gpa: an Ethernet header then a pattern. */
static void put_frame(struct fx *f, uint64_t gpa, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		f->buf[gpa + i] = (uint8_t)(seed + i * 7);
}

static struct virtio_net_stats stats(struct fx *f)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(&f->d, &s);
	return s;
}

static void device_shape(void **state)
{
	struct fx *f = *state;
	assert_int_equal(f->d.ops->device_id, VIRTIO_ID_NET);
	assert_int_equal(f->d.num_queues, 2);
	assert_true(f->d.device_features & (1ULL << VIRTIO_NET_F_MAC));
	assert_true(f->d.device_features & (1ULL << VIRTIO_NET_F_STATUS));
	/* Offloads and merged buffers are not offered (net.h says why). */
	assert_int_equal(
	    f->d.device_features & 0xffffULL & ~(1ULL << VIRTIO_NET_F_MAC), 0);
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];
	f->d.ops->config_read(&f->d, 0, cfg, sizeof(cfg));
	assert_memory_equal(cfg, mac, 6);
	assert_int_equal(cfg[6], VIRTIO_NET_S_LINK_UP);
	assert_int_equal(cfg[7], 0);
}

static void tx_good_frame_reaches_backend(void **state)
{
	struct fx *f = *state;
	/* Header and frame in separate buffers, the frame split in two. */
	put_frame(f, DATA + 0x100, 40, 1);
	put_frame(f, DATA + 0x200, 60, (uint8_t)(41 * 7 + 1));
	struct drv_seg s[] = {
	    {DATA, HDR, 0}, {DATA + 0x100, 40, 0}, {DATA + 0x200, 60, 0}};
	uint16_t head = offer(f, VIRTIO_NET_TXQ, s, 3);
	drv_kick(&f->d, VIRTIO_NET_TXQ);
	assert_int_equal(f->tx_ready, 1);
	assert_int_equal(used_idx(f, VIRTIO_NET_TXQ), 0); /* not yet sent */
	size_t len = virtio_net_tx_pop(&f->d, f->frame, sizeof(f->frame));
	assert_int_equal(len, 100);
	assert_memory_equal(f->frame, f->buf + DATA + 0x100, 40);
	assert_memory_equal(f->frame + 40, f->buf + DATA + 0x200, 60);
	assert_int_equal(used_idx(f, VIRTIO_NET_TXQ), 1);
	assert_int_equal(used_id(f, VIRTIO_NET_TXQ, 0), head);
	assert_int_equal(used_len(f, VIRTIO_NET_TXQ, 0), 0);
	assert_int_equal(f->used_irqs, 1);
	assert_int_equal(virtio_net_tx_pop(&f->d, f->frame, sizeof(f->frame)),
	                 0);
	assert_int_equal(stats(f).tx_frames, 1);
	assert_int_equal(stats(f).tx_dropped, 0);
	/* Kicks were off while frames waited and are back on now. */
	assert_int_equal(f->d.queues[VIRTIO_NET_TXQ].broken, false);
}

static void tx_bad_frames_are_dropped(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	put_frame(f, DATA, 0x20000, 3);
	/* Truncated: header and 13 bytes of Ethernet header. */
	struct drv_seg shorty[] = {{DATA, HDR + 13, 0}};
	/* Only a header: a zero-length frame. */
	struct drv_seg empty[] = {{DATA, HDR, 0}};
	/* Oversized: one byte above VIRTIO_NET_MAX_TX. */
	struct drv_seg big[] = {
	    {DATA, 0x10000, 0},
	    {DATA + 0x10000, VIRTIO_NET_MAX_TX - 0x10000 + 1, 0}};
	/* A device-writable buffer in a transmit chain. */
	struct drv_seg writable[] = {{DATA, HDR + 60, 0},
	                             {DATA + 0x100, 8, WR}};
	/* Then a good one, exactly the largest accepted. */
	struct drv_seg largest[] = {
	    {DATA, 0x10000, 0},
	    {DATA + 0x10000, VIRTIO_NET_MAX_TX - 0x10000, 0}};
	offer(f, VIRTIO_NET_TXQ, shorty, 1);
	offer(f, VIRTIO_NET_TXQ, empty, 1);
	offer(f, VIRTIO_NET_TXQ, big, 2);
	offer(f, VIRTIO_NET_TXQ, writable, 2);
	offer(f, VIRTIO_NET_TXQ, largest, 2);
	drv_kick(&f->d, VIRTIO_NET_TXQ);
	size_t len = virtio_net_tx_pop(&f->d, f->frame, sizeof(f->frame));
	assert_int_equal(len, VIRTIO_NET_MAX_FRAME);
	assert_memory_equal(f->frame, f->buf + DATA + HDR, len);
	/* Every chain was returned, the dropped ones with nothing used. */
	assert_int_equal(used_idx(f, VIRTIO_NET_TXQ), 5);
	for (uint16_t i = 0; i < 5; i++)
		assert_int_equal(used_len(f, VIRTIO_NET_TXQ, i), 0);
	assert_int_equal(stats(f).tx_dropped, 4);
	assert_int_equal(stats(f).tx_frames, 1);
	assert_true(virtio_dev_live(&f->d));
	assert_int_equal(f->config_irqs, 0);
}

static void tx_bad_descriptor_breaks_only_the_device(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	/* A zero-length descriptor, then one outside guest RAM: both
	 * break the ring protocol. */
	struct drv_seg zero[] = {{DATA, 0, 0}};
	offer(f, VIRTIO_NET_TXQ, zero, 1);
	drv_kick(&f->d, VIRTIO_NET_TXQ);
	assert_int_equal(virtio_net_tx_pop(&f->d, f->frame, sizeof(f->frame)),
	                 0);
	assert_false(virtio_dev_live(&f->d));
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	/* Nothing more happens until a reset: no frames either way. */
	assert_int_equal(virtio_net_rx_push(&f->d, f->frame, 60), 0);
	assert_int_equal(used_idx(f, VIRTIO_NET_TXQ), 0);

	/* After a reset, an address outside RAM does the same. */
	teardown(state);
	assert_int_equal(setup(state), 0);
	f = *state;
	vmm_log_set_quiet(true);
	struct drv_seg outside[] = {{MEM_SIZE - 8, 64, 0}};
	offer(f, VIRTIO_NET_TXQ, outside, 1);
	assert_int_equal(virtio_net_tx_pop(&f->d, f->frame, sizeof(f->frame)),
	                 0);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void rx_delivers_with_header(void **state)
{
	struct fx *f = *state;
	/* As Linux posts them: header + 1518 bytes in one buffer. */
	memset(f->buf + DATA, 0xee, 0x1000);
	struct drv_seg s[] = {{DATA, HDR + 1518, WR}};
	uint16_t head = offer(f, VIRTIO_NET_RXQ, s, 1);
	uint8_t frame[100];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 3 + 1);
	assert_int_equal(virtio_net_rx_push(&f->d, frame, sizeof(frame)), 1);
	assert_int_equal(used_idx(f, VIRTIO_NET_RXQ), 1);
	assert_int_equal(used_id(f, VIRTIO_NET_RXQ, 0), head);
	assert_int_equal(used_len(f, VIRTIO_NET_RXQ, 0), HDR + sizeof(frame));
	/* flags 0, gso NONE, lengths 0, num_buffers 1 (little-endian). */
	static const uint8_t hdr[HDR] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	assert_memory_equal(f->buf + DATA, hdr, HDR);
	assert_memory_equal(f->buf + DATA + HDR, frame, sizeof(frame));
	assert_int_equal(f->buf[DATA + HDR + sizeof(frame)], 0xee);
	assert_int_equal(f->used_irqs, 1);
	assert_int_equal(stats(f).rx_frames, 1);

	/* A chain of several small buffers takes a frame across them. */
	struct drv_seg parts[] = {{DATA + 0x2000, 5, WR},
	                          {DATA + 0x3000, 50, WR},
	                          {DATA + 0x4000, 2000, WR}};
	offer(f, VIRTIO_NET_RXQ, parts, 3);
	assert_int_equal(virtio_net_rx_push(&f->d, frame, sizeof(frame)), 1);
	assert_int_equal(used_len(f, VIRTIO_NET_RXQ, 1), HDR + sizeof(frame));
	assert_int_equal(f->buf[DATA + 0x2000 + 4], 0);
	assert_memory_equal(f->buf + DATA + 0x3000 + HDR - 5, frame,
	                    50 - (HDR - 5));
}

static void rx_without_buffers_waits(void **state)
{
	struct fx *f = *state;
	uint8_t frame[60] = {1, 2, 3};
	/* No buffer posted: keep the frame, nothing used, nothing lost. */
	assert_int_equal(virtio_net_rx_push(&f->d, frame, sizeof(frame)), 0);
	assert_int_equal(used_idx(f, VIRTIO_NET_RXQ), 0);
	assert_int_equal(stats(f).rx_dropped, 0);
	/* The driver posts one and kicks: the backend hears of it. */
	struct drv_seg s[] = {{DATA, 1600, WR}};
	offer(f, VIRTIO_NET_RXQ, s, 1);
	drv_kick(&f->d, VIRTIO_NET_RXQ);
	assert_int_equal(f->rx_ready, 1);
	assert_int_equal(virtio_net_rx_push(&f->d, frame, sizeof(frame)), 1);
	assert_int_equal(used_idx(f, VIRTIO_NET_RXQ), 1);

	/* A driver that is not running yet takes nothing either. */
	f->d.status = 0;
	offer(f, VIRTIO_NET_RXQ, s, 1);
	assert_int_equal(virtio_net_rx_push(&f->d, frame, sizeof(frame)), 0);
	assert_int_equal(used_idx(f, VIRTIO_NET_RXQ), 1);
}

static void rx_too_large_is_dropped(void **state)
{
	struct fx *f = *state;
	static uint8_t big[VIRTIO_NET_MAX_FRAME + 1];
	/* Larger than any frame: refused before a buffer is taken. */
	assert_int_equal(virtio_net_rx_push(&f->d, big, sizeof(big)),
	                 -EMSGSIZE);
	/* Larger than the buffer: the buffer comes back empty. */
	struct drv_seg s[] = {{DATA, HDR + 100, WR}};
	offer(f, VIRTIO_NET_RXQ, s, 1);
	assert_int_equal(virtio_net_rx_push(&f->d, big, 101), -EMSGSIZE);
	assert_int_equal(used_idx(f, VIRTIO_NET_RXQ), 1);
	assert_int_equal(used_len(f, VIRTIO_NET_RXQ, 0), 0);
	/* A receive chain with only device-readable buffers: the same. */
	struct drv_seg ro[] = {{DATA, 1600, 0}};
	offer(f, VIRTIO_NET_RXQ, ro, 1);
	assert_int_equal(virtio_net_rx_push(&f->d, big, 60), -EMSGSIZE);
	assert_int_equal(stats(f).rx_dropped, 3);
	assert_true(virtio_dev_live(&f->d));
}

static void net_option_parsing(void **state)
{
	(void)state;
	struct vmm_net n;
	struct husk_error e = {0};
	assert_int_equal(vmm_parse_net("none", &n, &e), 0);
	assert_false(n.user);
	assert_int_equal(vmm_parse_net("user", &n, &e), 0);
	assert_true(n.user);
	assert_int_equal(n.nfwd, 0);
	assert_int_equal(
	    vmm_parse_net("user,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:"
	                  ":53-10.0.2.15:5353",
	                  &n, &e),
	    0);
	assert_int_equal(n.nfwd, 2);
	assert_false(n.fwd[0].udp);
	assert_int_equal(n.fwd[0].host_port, 18080);
	assert_int_equal(n.fwd[0].guest_port, 8080);
	assert_int_equal(ntohl(n.fwd[0].host_addr.s_addr), 0x7f000001);
	assert_int_equal(ntohl(n.fwd[0].guest_addr.s_addr), 0x0a00020f);
	assert_true(n.fwd[1].udp);
	assert_int_equal(n.fwd[1].host_addr.s_addr, 0);
	assert_false(n.tap);
	/* A tap husk-vmm makes, or one it inherits (husk run's way). */
	assert_int_equal(vmm_parse_net("tap", &n, &e), 0);
	assert_true(n.tap);
	assert_false(n.user);
	assert_int_equal(n.tap_fd, -1);
	assert_string_equal(n.ifname, "");
	assert_int_equal(
	    vmm_parse_net(
	        "tap,ifname=husk7,bridge=br-husk,mac=52:54:0a:58:00:02", &n,
	        &e),
	    0);
	assert_string_equal(n.ifname, "husk7");
	assert_string_equal(n.bridge, "br-husk");
	assert_true(n.has_mac);
	assert_int_equal(n.mac[2], 0x0a);
	assert_int_equal(n.mac[5], 0x02);
	assert_int_equal(vmm_parse_net("tap,fd=4", &n, &e), 0);
	assert_int_equal(n.tap_fd, 4);
	assert_false(n.has_mac);
	static const char *const bad[] = {
	    "",
	    "tapx",
	    "tap,ifname=",
	    "tap,ifname=a-name-far-too-long",
	    "tap,ifname=a/b",
	    "tap,bridge=br:0",
	    "tap,mac=01:00:5e:00:00:01", /* multicast */
	    "tap,mac=52:54:00:12:34",
	    "tap,mac=52:54:00:12:34:56:78",
	    "tap,fd=",
	    "tap,fd=-1",
	    "tap,fd=4x",
	    "tap,fd=4,bridge=br0",
	    "tap,colour=blue",
	    "usery",
	    "user,foo=1",
	    "user,hostfwd=tcp:1.2.3.4:0-:80",
	    "user,hostfwd=tcp::65536-:80",
	    "user,hostfwd=sctp::80-:80",
	    "user,hostfwd=tcp::80",
	    "user,hostfwd=tcp:1.2.3:80-:80",
	    "user,hostfwd=tcp::80-:8x",
	    "user,hostfwd=tcp::80-:80,hostfwd=tcp::80-:81",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		if (vmm_parse_net(bad[i], &n, &e) != -EINVAL)
			fail_msg("--net '%s' was accepted", bad[i]);
		assert_true(strstr(e.msg, "--net") != NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(device_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(tx_good_frame_reaches_backend,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(tx_bad_frames_are_dropped, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        tx_bad_descriptor_breaks_only_the_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(rx_delivers_with_header, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rx_without_buffers_waits, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(rx_too_large_is_dropped, setup,
	                                    teardown),
	    cmocka_unit_test(net_option_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
