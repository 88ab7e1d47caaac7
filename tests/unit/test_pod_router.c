/* The pod daemon's frame router (src/runtime/pod_router.c) between one
 * agent and several members, over socketpairs: stream renumbering both
 * ways, HELLO, a member's SHUTDOWN, a member that leaves, and a hostile
 * agent (no HELLO first, unknown streams, an oversized frame). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/runtime/pod_router.h"
#include "husk/proto.h"

struct frame {
	uint32_t len, stream;
	unsigned type, flags;
	uint8_t payload[64];
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* A raw frame: the router reads headers only. */
static void send_raw(int fd, unsigned type, unsigned flags, uint32_t stream,
                     uint32_t len)
{
	uint8_t b[12 + 16] = {0};
	put32(b, len);
	b[4] = (uint8_t)type;
	b[5] = (uint8_t)(type >> 8);
	b[6] = (uint8_t)flags;
	put32(b + 8, stream);
	for (uint32_t i = 0; i < len && i < 16; i++)
		b[12 + i] = (uint8_t)(0xa0 + i);
	assert_int_equal(write(fd, b, 12 + (len < 16 ? len : 16)),
	                 12 + (len < 16 ? len : 16));
}

static void pump(struct pod_router *r)
{
	for (int i = 0; i < 20; i++) {
		struct pollfd p[POD_MAX_MEMBERS + 1];
		int n = pod_router_pollfds(r, p, POD_MAX_MEMBERS + 1);
		if (poll(p, (nfds_t)n, 10) <= 0)
			continue;
		pod_router_dispatch(r, p, n);
	}
}

/* The frames waiting on fd (the test's end), at most cap. */
static int recv_frames(int fd, struct frame *f, int cap)
{
	uint8_t buf[8192];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	int k = 0;
	for (ssize_t off = 0; n > 0 && off + 12 <= n && k < cap; k++) {
		f[k].len = get32(buf + off);
		f[k].type = buf[off + 4] | buf[off + 5] << 8;
		f[k].flags = buf[off + 6] | buf[off + 7] << 8;
		f[k].stream = get32(buf + off + 8);
		size_t pl = f[k].len < 64 ? f[k].len : 64;
		memcpy(f[k].payload, buf + off + 12, pl);
		off += 12 + f[k].len;
	}
	return k;
}

static bool closed(int fd)
{
	char c;
	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

struct fixture {
	struct pod_router r;
	int agent; /* the test plays the agent on this end */
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct husk_error err = {0};
	assert_int_equal(pod_router_init(&x->r, sv[0], &err), 0);
	x->agent = sv[1];
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	pod_router_free(&x->r);
	close(x->agent);
	free(x);
	return 0;
}

/* The agent's HELLO, as the test sends it; the router saves it. */
static void agent_hello(struct fixture *x)
{
	send_raw(x->agent, HUSK_FRAME_HELLO, 0, 0, 6);
	pump(&x->r);
	assert_true(pod_router_ready(&x->r));
}

static int add_member(struct fixture *x, int *mine)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct husk_error err = {0};
	int i = pod_router_add(&x->r, sv[0], &err);
	assert_true(i >= 0);
	*mine = sv[1];
	return i;
}

static void hello_and_streams_are_renumbered(void **state)
{
	struct fixture *x = *state;
	struct frame f[8];
	pump(&x->r);
	/* ours to the agent first */
	assert_int_equal(recv_frames(x->agent, f, 8), 1);
	assert_int_equal(f[0].type, HUSK_FRAME_HELLO);
	int m1, m2;
	add_member(x, &m1);
	pump(&x->r);
	/* no HELLO to a member before the agent's */
	assert_int_equal(recv_frames(m1, f, 8), 0);
	agent_hello(x);
	add_member(x, &m2);
	pump(&x->r);
	for (int m = 0; m < 2; m++) {
		int fd = m ? m2 : m1;
		assert_int_equal(recv_frames(fd, f, 8), 1);
		assert_int_equal(f[0].type, HUSK_FRAME_HELLO);
		assert_int_equal(f[0].len, 6);
		send_raw(fd, HUSK_FRAME_HELLO, 0, 0, 4); /* not forwarded */
		send_raw(fd, HUSK_FRAME_CREATE, 0, 1, 8);
	}
	pump(&x->r);
	assert_int_equal(recv_frames(x->agent, f, 8), 2);
	assert_int_equal(f[0].type, HUSK_FRAME_CREATE);
	assert_int_equal(f[1].type, HUSK_FRAME_CREATE);
	/* one member's stream 1 and the other's are two agent streams */
	assert_true(f[0].stream != f[1].stream);
	assert_int_equal(f[0].payload[0], 0xa0); /* payload untouched */
	uint32_t a1 = f[0].stream, a2 = f[1].stream;
	/* back: each member hears of its own stream only, as stream 1 */
	send_raw(x->agent, HUSK_FRAME_STDOUT, 0, a2, 3);
	pump(&x->r);
	assert_int_equal(recv_frames(m1, f, 8), 0);
	assert_int_equal(recv_frames(m2, f, 8), 1);
	assert_int_equal(f[0].type, HUSK_FRAME_STDOUT);
	assert_int_equal(f[0].stream, 1);
	/* EXIT frees the route: later frames on it go nowhere */
	send_raw(x->agent, HUSK_FRAME_EXIT, 0, a1, 2);
	send_raw(x->agent, HUSK_FRAME_STDOUT, 0, a1, 2);
	send_raw(x->agent, HUSK_FRAME_STDOUT, 0, 999, 2); /* unknown */
	pump(&x->r);
	assert_int_equal(recv_frames(m1, f, 8), 1);
	assert_int_equal(f[0].type, HUSK_FRAME_EXIT);
	assert_int_equal(recv_frames(m2, f, 8), 0);
	/* a frame on a stream the member never created is dropped */
	send_raw(m1, HUSK_FRAME_SIGNAL, 0, 7, 6);
	pump(&x->r);
	assert_int_equal(recv_frames(x->agent, f, 8), 0);
	close(m1);
	close(m2);
}

static void shutdown_and_leaving(void **state)
{
	struct fixture *x = *state;
	struct frame f[8];
	agent_hello(x);
	int m;
	add_member(x, &m);
	send_raw(m, HUSK_FRAME_HELLO, 0, 0, 4);
	send_raw(m, HUSK_FRAME_CREATE, 0, 3, 8);
	send_raw(m, HUSK_FRAME_EXEC, 0, 4, 8);
	pump(&x->r);
	recv_frames(m, f, 8);
	assert_int_equal(recv_frames(x->agent, f, 8), 3); /* + our HELLO */
	uint32_t a3 = f[1].stream, a4 = f[2].stream;
	/* the member's SHUTDOWN is answered by the router, not the agent */
	send_raw(m, HUSK_FRAME_SHUTDOWN, 0, 0, 0);
	pump(&x->r);
	assert_int_equal(recv_frames(m, f, 8), 1);
	assert_int_equal(f[0].type, HUSK_FRAME_SHUTDOWN);
	assert_int_equal(f[0].flags, HUSK_FRAME_REPLY);
	assert_int_equal(recv_frames(x->agent, f, 8), 0);
	/* leaving kills its processes */
	assert_int_equal(x->r.nmembers, 1);
	close(m);
	pump(&x->r);
	assert_int_equal(x->r.nmembers, 0);
	assert_int_equal(recv_frames(x->agent, f, 8), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f[i].type, HUSK_FRAME_SIGNAL);
		assert_true(f[i].stream == a3 || f[i].stream == a4);
	}
	assert_true(f[0].stream != f[1].stream);
}

static void member_without_hello_is_dropped(void **state)
{
	struct fixture *x = *state;
	agent_hello(x);
	int m;
	add_member(x, &m);
	send_raw(m, HUSK_FRAME_CREATE, 0, 1, 8);
	pump(&x->r);
	assert_int_equal(x->r.nmembers, 0);
	struct frame f[4];
	recv_frames(m, f, 4); /* the HELLO it got */
	assert_true(closed(m));
	close(m);
}

static void agent_without_hello_breaks(void **state)
{
	struct fixture *x = *state;
	int m;
	add_member(x, &m);
	send_raw(x->agent, HUSK_FRAME_STDOUT, 0, 1, 4);
	pump(&x->r);
	assert_true(x->r.agent_gone);
	assert_false(pod_router_ready(&x->r));
	/* its members see the end */
	assert_true(closed(m));
	close(m);
}

static void oversized_agent_frame_breaks(void **state)
{
	struct fixture *x = *state;
	agent_hello(x);
	int m;
	add_member(x, &m);
	pump(&x->r);
	send_raw(x->agent, HUSK_FRAME_STDOUT, 0, 1, HUSK_PROTO_MAX_PAYLOAD + 1);
	pump(&x->r);
	assert_true(x->r.agent_gone);
	assert_int_equal(x->r.why.code, EPROTO);
	struct frame f[4];
	recv_frames(m, f, 4); /* the HELLO */
	assert_true(closed(m));
	close(m);
}

static void agent_error_reaches_every_member(void **state)
{
	struct fixture *x = *state;
	agent_hello(x);
	int m1, m2;
	add_member(x, &m1);
	add_member(x, &m2);
	pump(&x->r);
	struct frame f[4];
	recv_frames(m1, f, 4);
	recv_frames(m2, f, 4);
	send_raw(x->agent, HUSK_FRAME_ERROR, 0, 0, 10);
	pump(&x->r);
	for (int k = 0; k < 2; k++) {
		int fd = k ? m2 : m1;
		assert_int_equal(recv_frames(fd, f, 4), 1);
		assert_int_equal(f[0].type, HUSK_FRAME_ERROR);
		assert_true(closed(fd));
		close(fd);
	}
	assert_true(x->r.agent_gone);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(hello_and_streams_are_renumbered),
	    T(shutdown_and_leaving),
	    T(member_without_hello_is_dropped),
	    T(agent_without_hello_breaks),
	    T(oversized_agent_frame_breaks),
	    T(agent_error_reaches_every_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
