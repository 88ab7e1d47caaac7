/* Crafted frames against both ends of a run: husk-agent's session fed a
 * hostile host, and husk run's client fed a hostile agent. Each side must
 * answer with an ERROR or an error return, and never crash or hang. (The
 * fuzz targets fuzz_agent_session and fuzz_agent_client explore further.)
 *
 * The agent runs in a forked child over a socketpair; its state directory
 * is under /proc, where nothing can be created, so a CREATE can never
 * mount or start anything. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/agent/process.h"
#include "../../src/agent/session.h"
#include "husk/agent_client.h"
#include "husk/proto.h"

struct peer {
	pid_t pid;
	int fd;
	struct husk_proto_reader reader;
};

static void start_agent(struct peer *p)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		close(sv[1]);
		struct husk_error e;
		agent_spawn_init_self(&e);
		struct agent_env env = {.state_dir = "/proc/husk-test-nowhere"};
		_exit(agent_serve(&env, sv[0], &e) == 0 ? 0 : 1);
	}
	close(sv[0]);
	p->fd = sv[1];
	husk_proto_reader_init(&p->reader, HUSK_SIDE_HOST);
}

static void send_raw(struct peer *p, const void *buf, size_t n)
{
	assert_int_equal(write(p->fd, buf, n), (ssize_t)n);
}

static void send_enc(struct peer *p, struct husk_proto_enc *e)
{
	send_raw(p, e->buf, e->len);
	husk_proto_enc_reset(e);
}

/* The next frame from the agent, or type 0 at EOF / timeout. Its payload
 * stays valid until the next call. */
static struct husk_frame next_frame(struct peer *p)
{
	static uint8_t buf[1];
	struct husk_frame f = {0};
	struct husk_error e;
	for (;;) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		if (poll(&pfd, 1, 10000) <= 0)
			return f;
		ssize_t n = read(p->fd, buf, 1);
		if (n <= 0)
			return f;
		size_t used;
		int rc =
		    husk_proto_reader_feed(&p->reader, buf, 1, &used, &f, &e);
		assert_true(rc >= 0);
		if (rc == 1)
			return f;
	}
}

static int finish(struct peer *p)
{
	close(p->fd);
	int st;
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	husk_proto_reader_free(&p->reader);
	assert_true(WIFEXITED(st)); /* no crash, no sanitizer abort */
	return WEXITSTATUS(st);
}

static void hello(struct peer *p, struct husk_proto_enc *e)
{
	struct husk_error err;
	husk_proto_enc_hello(e, "test", &err);
	send_enc(p, e);
	struct husk_frame f = next_frame(p);
	assert_int_equal(f.type, HUSK_FRAME_HELLO);
}

static void expect_fatal_error(struct peer *p, uint32_t code)
{
	struct husk_frame f = next_frame(p);
	assert_int_equal(f.type, HUSK_FRAME_ERROR);
	uint32_t got = 0, req = 99;
	struct husk_error e;
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_ERRNO, &got, &e), 1);
	assert_int_equal(got, code);
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_REQUEST, &req, &e), 0);
	assert_int_equal(finish(p), 1);
}

static void unknown_frame_type_ends_the_session(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	uint8_t bad[12] = {0, 0, 0, 0, 0x77, 0x00, 0, 0, 1, 0, 0, 0};
	send_raw(&p, bad, sizeof(bad));
	expect_fatal_error(&p, EPROTO);
	husk_proto_enc_free(&e);
}

static void huge_length_is_refused_before_allocation(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	/* 100 MB STDIN frame header */
	uint8_t big[12] = {0x00, 0xe1, 0xf5, 0x05, HUSK_FRAME_STDIN, 0, 0, 0,
	                   1,    0,    0,    0};
	send_raw(&p, big, sizeof(big));
	expect_fatal_error(&p, EMSGSIZE);
	husk_proto_enc_free(&e);
}

static void frame_before_hello_is_refused(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	struct husk_error err;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	husk_proto_enc_begin(&e, HUSK_FRAME_SHUTDOWN, 0, 0, &err);
	husk_proto_enc_end(&e, &err);
	send_enc(&p, &e);
	assert_int_equal(next_frame(&p).type, HUSK_FRAME_HELLO);
	expect_fatal_error(&p, EPROTO);
	husk_proto_enc_free(&e);
}

static void agent_only_frame_from_host_is_refused(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	/* EXIT is the agent's to send: forge its bytes by hand */
	uint8_t exit_frame[12] = {0, 0, 0, 0, HUSK_FRAME_EXIT, 0, 0, 0,
	                          1, 0, 0, 0};
	send_raw(&p, exit_frame, sizeof(exit_frame));
	expect_fatal_error(&p, EPROTO);
	husk_proto_enc_free(&e);
}

/* Requests that cannot be done get an ERROR naming them; the session
 * goes on, and a SHUTDOWN still ends it cleanly. */
static void bad_requests_are_answered_and_the_session_survives(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	struct husk_error err;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	const char *argv[] = {"sh", NULL};
	const char *ids[] = {"../../etc", "a/b", ".", "ok-id"};
	for (size_t i = 0; i < 4; i++) {
		husk_proto_enc_begin(&e, HUSK_FRAME_CREATE, 0, 7, &err);
		husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, ids[i], &err);
		husk_proto_enc_str(&e, HUSK_TAG_ROOT_DEVICE, "/", &err);
		husk_proto_enc_strv(&e, HUSK_TAG_ARGV, argv, &err);
		assert_int_equal(husk_proto_enc_end(&e, &err), 0);
		send_enc(&p, &e);
		struct husk_frame f = next_frame(&p);
		assert_int_equal(f.type, HUSK_FRAME_ERROR);
		assert_int_equal(f.stream, 7);
		uint32_t req = 0;
		assert_int_equal(
		    husk_frame_u32(&f, HUSK_TAG_REQUEST, &req, &err), 1);
		assert_int_equal(req, HUSK_FRAME_CREATE);
	}
	/* stdio and credit for streams that do not exist are dropped; a
	 * START, SIGNAL or WAIT for one is answered with ESRCH */
	husk_proto_enc_begin(&e, HUSK_FRAME_STDIN, 0, 42, &err);
	husk_proto_enc_data(&e, "xyz", 3, &err);
	husk_proto_enc_end(&e, &err);
	husk_proto_enc_begin(&e, HUSK_FRAME_CREDIT, 0, 42, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_FD, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_CREDIT, 100, &err);
	husk_proto_enc_end(&e, &err);
	unsigned reqs[] = {HUSK_FRAME_START, HUSK_FRAME_WAIT,
	                   HUSK_FRAME_SIGNAL};
	for (size_t i = 0; i < 3; i++) {
		husk_proto_enc_begin(&e, reqs[i], 0, 42, &err);
		if (reqs[i] == HUSK_FRAME_SIGNAL)
			husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, 9, &err);
		assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	}
	send_enc(&p, &e);
	for (size_t i = 0; i < 3; i++) {
		struct husk_frame f = next_frame(&p);
		assert_int_equal(f.type, HUSK_FRAME_ERROR);
		uint32_t code = 0;
		husk_frame_u32(&f, HUSK_TAG_ERRNO, &code, &err);
		assert_int_equal(code, ESRCH);
	}
	husk_proto_enc_begin(&e, HUSK_FRAME_SHUTDOWN, 0, 0, &err);
	husk_proto_enc_end(&e, &err);
	send_enc(&p, &e);
	struct husk_frame f = next_frame(&p);
	assert_int_equal(f.type, HUSK_FRAME_SHUTDOWN);
	assert_true(f.flags & HUSK_FRAME_REPLY);
	assert_int_equal(finish(&p), 0);
	husk_proto_enc_free(&e);
}

static void host_going_away_ends_the_agent(void **state)
{
	struct peer p;
	struct husk_proto_enc e;
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	/* half a frame, then EOF */
	uint8_t part[5] = {4, 0, 0, 0, HUSK_FRAME_STDIN};
	send_raw(&p, part, sizeof(part));
	shutdown(p.fd, SHUT_WR);
	assert_int_equal(finish(&p), 1);
	husk_proto_enc_free(&e);
}

/* ---- the client against a hostile agent ---- */

struct feed {
	int fd;
	const uint8_t *bytes;
	size_t n;
};

/* Plays the agent from a thread: writes its bytes, then EOF, and reads
 * whatever the client says so that neither side blocks. */
static void *play_agent(void *arg)
{
	struct feed *f = arg;
	size_t off = 0;
	while (off < f->n) {
		ssize_t w = write(f->fd, f->bytes + off, f->n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(f->fd, SHUT_WR);
	char buf[4096];
	while (read(f->fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static int client_against(const uint8_t *bytes, size_t n,
                          struct husk_error *err, struct husk_run_result *res)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	struct feed feed = {sv[1], bytes, n};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, play_agent, &feed), 0);
	const char *argv[] = {"true", NULL};
	struct husk_run_request req = {
	    .container_id = "c", .root_device = "serial:r", .argv = argv};
	struct husk_run_io io = {.in_fd = -1,
	                         .out_fd = -1,
	                         .err_fd = -1,
	                         .sig_fd = -1,
	                         .tty_fd = -1};
	int rc = husk_agent_run(sv[0], &req, &io, 2000, res, err);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return rc;
}

static void agent_frames(struct husk_proto_enc *e, bool created)
{
	struct husk_error err;
	husk_proto_enc_init_alloc(e, HUSK_SIDE_AGENT);
	husk_proto_enc_hello(e, "evil", &err);
	if (created) {
		husk_proto_enc_begin(e, HUSK_FRAME_CREATE, HUSK_FRAME_REPLY, 1,
		                     &err);
		husk_proto_enc_end(e, &err);
	}
}

static void client_refuses_output_beyond_credit(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err;
	struct husk_run_result res;
	agent_frames(&e, true);
	static uint8_t junk[(256 << 10) + 1];
	husk_proto_enc_begin(&e, HUSK_FRAME_STDOUT, 0, 1, &err);
	husk_proto_enc_data(&e, junk, sizeof(junk), &err);
	husk_proto_enc_end(&e, &err);
	assert_int_equal(client_against(e.buf, e.len, &err, &res), -EPROTO);
	assert_non_null(strstr(err.msg, "beyond its credit"));
	husk_proto_enc_free(&e);
}

static void client_refuses_a_second_exit(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err;
	struct husk_run_result res;
	agent_frames(&e, false);
	husk_proto_enc_begin(&e, HUSK_FRAME_EXIT, 0, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_EXIT_CODE, 0, &err);
	husk_proto_enc_end(&e, &err);
	husk_proto_enc_begin(&e, HUSK_FRAME_EXIT, 0, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_EXIT_CODE, 0, &err);
	husk_proto_enc_end(&e, &err);
	/* the first EXIT is taken (the process may die at once), a second
	 * one breaks the protocol */
	assert_int_equal(client_against(e.buf, e.len, &err, &res), -EPROTO);
	husk_proto_enc_free(&e);
}

static void client_reports_an_agent_that_vanishes(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err;
	struct husk_run_result res;
	agent_frames(&e, true);
	assert_int_equal(client_against(e.buf, e.len, &err, &res), -ECONNRESET);
	assert_non_null(strstr(err.msg, "ended before the container"));
	husk_proto_enc_free(&e);
}

static void client_takes_a_well_behaved_exit(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err;
	struct husk_run_result res;
	agent_frames(&e, true);
	husk_proto_enc_begin(&e, HUSK_FRAME_EXIT, 0, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_EXIT_CODE, 137, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_EXIT_SIGNAL, 9, &err);
	husk_proto_enc_bool(&e, HUSK_TAG_OOM_KILLED, true, &err);
	husk_proto_enc_end(&e, &err);
	husk_proto_enc_begin(&e, HUSK_FRAME_SHUTDOWN, HUSK_FRAME_REPLY, 0,
	                     &err);
	husk_proto_enc_end(&e, &err);
	assert_int_equal(client_against(e.buf, e.len, &err, &res), 0);
	assert_int_equal(res.exit_code, 137);
	assert_int_equal(res.exit_signal, 9);
	assert_true(res.oom_killed);
	husk_proto_enc_free(&e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(unknown_frame_type_ends_the_session),
	    cmocka_unit_test(huge_length_is_refused_before_allocation),
	    cmocka_unit_test(frame_before_hello_is_refused),
	    cmocka_unit_test(agent_only_frame_from_host_is_refused),
	    cmocka_unit_test(
	        bad_requests_are_answered_and_the_session_survives),
	    cmocka_unit_test(host_going_away_ends_the_agent),
	    cmocka_unit_test(client_refuses_output_beyond_credit),
	    cmocka_unit_test(client_refuses_a_second_exit),
	    cmocka_unit_test(client_reports_an_agent_that_vanishes),
	    cmocka_unit_test(client_takes_a_well_behaved_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
