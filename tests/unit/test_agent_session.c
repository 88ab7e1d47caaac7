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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "../../src/agent/process.h"
#include "../../src/agent/session.h"
#include "../../src/agent/volume.h"
#include "husk/agent_client.h"
#include "husk/agent_mux.h"
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

/* ---- volumes: MOUNT entries ---- */

static void create_with_mounts(struct husk_proto_enc *e,
                               const char *const *mounts)
{
	struct husk_error err;
	const char *argv[] = {"sh", NULL};
	husk_proto_enc_begin(e, HUSK_FRAME_CREATE, 0, 7, &err);
	husk_proto_enc_str(e, HUSK_TAG_CONTAINER_ID, "c1", &err);
	husk_proto_enc_str(e, HUSK_TAG_ROOT_DEVICE, "/", &err);
	husk_proto_enc_strv(e, HUSK_TAG_ARGV, argv, &err);
	husk_proto_enc_strv(e, HUSK_TAG_MOUNT, mounts, &err);
}

/* The agent's answer to a CREATE: its errno, message into msg. */
static uint32_t create_error(struct peer *p, char *msg, size_t cap)
{
	struct husk_error err;
	struct husk_frame f = next_frame(p);
	assert_int_equal(f.type, HUSK_FRAME_ERROR);
	assert_int_equal(f.stream, 7);
	uint32_t code = 0, req = 0;
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_REQUEST, &req, &err), 1);
	assert_int_equal(req, HUSK_FRAME_CREATE);
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_ERRNO, &code, &err), 1);
	assert_true(husk_frame_str_buf(&f, HUSK_TAG_MESSAGE, msg, cap, &err) >=
	            0);
	return code;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A CREATE the encoder would refuse: one MOUNT beyond the limit, added
 * by hand after a frame the encoder accepted. */
static void send_65_mounts(struct peer *p, struct husk_proto_enc *e)
{
	const char *mounts[HUSK_PROTO_MAX_MOUNTS + 1];
	for (int i = 0; i < HUSK_PROTO_MAX_MOUNTS; i++)
		mounts[i] = "tmpfs::rw:/t";
	mounts[HUSK_PROTO_MAX_MOUNTS] = NULL;
	struct husk_error err;
	create_with_mounts(e, mounts);
	assert_int_equal(husk_proto_enc_end(e, &err), 0);
	static const char extra[] = "tmpfs::rw:/t";
	size_t n = sizeof(extra) - 1, len = e->len + 6 + n;
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	memcpy(buf, e->buf, e->len);
	put_le(buf + e->len, HUSK_TAG_MOUNT, 2);
	put_le(buf + e->len + 2, n, 4);
	memcpy(buf + e->len + 6, extra, n);
	put_le(buf, len - HUSK_PROTO_HDR_SIZE, 4);
	send_raw(p, buf, len);
	free(buf);
	husk_proto_enc_reset(e);
}

/* A guest agent (not host mode) refuses malformed volumes, and bind:, by
 * name before it mounts anything, and goes on; 65 volumes break the
 * protocol. */
static void malformed_mounts_are_refused_by_the_agent(void **state)
{
	static const struct {
		const char *mount, *why;
	} bad[] = {
	    {"9p:vol0:ro", "want TYPE:SOURCE:MODE:/DEST"},
	    {"nfs:vol0:ro:/data", "unknown type"},
	    {"9p:../x:ro:/data", "9p tag"},
	    {"9p:vol0:rx:/data", "ro or rw"},
	    {"9p:vol0:ro:data", "not absolute"},
	    {"9p:vol0:ro:/data/../../etc", "'..'"},
	    {"tmpfs::rw://", "'/'"},
	    {"tmpfs::rw:/proc/sys", "/proc or /sys"},
	    {"bind:/etc:rw:/data", "only for the agent on the host"},
	};
	struct peer p;
	struct husk_proto_enc e;
	struct husk_error err;
	char msg[1025];
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* A good one first: the bad one is named, wherever it is. */
		const char *mounts[] = {"tmpfs::rw:/tmp", bad[i].mount, NULL};
		create_with_mounts(&e, mounts);
		assert_int_equal(husk_proto_enc_end(&e, &err), 0);
		send_enc(&p, &e);
		assert_int_equal(create_error(&p, msg, sizeof(msg)), EINVAL);
		char want[128];
		snprintf(want, sizeof(want), "MOUNT '%s': ", bad[i].mount);
		if (!strstr(msg, want) || !strstr(msg, bad[i].why))
			fail_msg("for '%s' the agent said '%s'", bad[i].mount,
			         msg);
	}
	/* Well-formed ones pass the checks; the CREATE then fails on the
	 * test's state directory, not on them. */
	const char *good[] = {"9p:vol0:ro:/data", "tmpfs::rw:/a:b", NULL};
	create_with_mounts(&e, good);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	send_enc(&p, &e);
	create_error(&p, msg, sizeof(msg));
	assert_null(strstr(msg, "MOUNT"));
	send_65_mounts(&p, &e);
	expect_fatal_error(&p, EMSGSIZE);
	husk_proto_enc_free(&e);
}

static void create_with_root(struct husk_proto_enc *e, const char *root)
{
	struct husk_error err;
	const char *argv[] = {"sh", NULL};
	husk_proto_enc_begin(e, HUSK_FRAME_CREATE, 0, 7, &err);
	husk_proto_enc_str(e, HUSK_TAG_CONTAINER_ID, "c1", &err);
	husk_proto_enc_str(e, HUSK_TAG_ROOT_DEVICE, root, &err);
	husk_proto_enc_strv(e, HUSK_TAG_ARGV, argv, &err);
	assert_int_equal(husk_proto_enc_end(e, &err), 0);
}

/* A guest agent checks a share's directory as a root device before it
 * does anything with it. */
static void share_root_devices_are_checked(void **state)
{
	/* 255 bytes, the protocol's most, ending in '/'. */
	static char slash[256];
	memset(slash, 'a', 255);
	memcpy(slash, "9p:pod/", 7);
	slash[254] = '/';
	const struct {
		const char *root, *why;
	} bad[] = {
	    {"9p:pod", "want 9p:TAG/SUBDIR"},
	    {"9p:pod/", "empty component"},
	    {"9p:pod/c1/../../x", "'.' or '..'"},
	    {"9p:pod/c 1", "only letters"},
	    {"9p:12345678901234567890123456789012/c1", "9p tag"},
	    {slash, "empty component"},
	};
	struct peer p;
	struct husk_proto_enc e;
	char msg[1025], want[128];
	start_agent(&p);
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		create_with_root(&e, bad[i].root);
		send_enc(&p, &e);
		uint32_t code = create_error(&p, msg, sizeof(msg));
		snprintf(want, sizeof(want), "root device '%.40s", bad[i].root);
		if (code != EINVAL || !strstr(msg, want) ||
		    !strstr(msg, bad[i].why))
			fail_msg("for '%s' the agent said %u '%s'", bad[i].root,
			         code, msg);
	}
	/* Well-formed ones pass; the CREATE then fails on the test's state
	 * directory. */
	slash[254] = 'a';
	const char *good[] = {"9p:pod/c1", "9p:a_b-C/x.y/z-1_2", slash};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		create_with_root(&e, good[i]);
		send_enc(&p, &e);
		create_error(&p, msg, sizeof(msg));
		if (strstr(msg, "root device"))
			fail_msg("for '%s' the agent said '%s'", good[i], msg);
	}
	husk_proto_enc_free(&e);
	finish(&p);
}

static void mount_parses(const char *s, bool host_mode, struct agent_mount *m)
{
	struct husk_error err = {0};
	int r = agent_mount_parse(s, strlen(s), host_mode, m, &err);
	if (r)
		fail_msg("'%s': %d %s", s, r, err.msg);
}

static void mount_fails(const char *s, size_t len, bool host_mode,
                        const char *why)
{
	struct agent_mount m;
	struct husk_error err = {0};
	int r = agent_mount_parse(s, len, host_mode, &m, &err);
	if (r != -EINVAL || !strstr(err.msg, why))
		fail_msg("'%.60s': %d '%s', want EINVAL '%s'", s, r, err.msg,
		         why);
}

static void mount_strings_are_split_and_normalised(void **state)
{
	struct agent_mount m;
	char desc[256];
	mount_parses("9p:vol_0-A:ro:/data", false, &m);
	assert_int_equal(m.type, AGENT_MOUNT_9P);
	assert_string_equal(m.source, "vol_0-A");
	assert_true(m.readonly);
	assert_string_equal(m.dest, "data");
	agent_mount_describe(&m, desc, sizeof(desc));
	assert_string_equal(desc, "9p:vol_0-A at /data");
	mount_parses("tmpfs::rw://a//./b/c:d:/", false, &m);
	assert_int_equal(m.type, AGENT_MOUNT_TMPFS);
	assert_false(m.readonly);
	assert_string_equal(m.source, "");
	assert_string_equal(m.dest, "a/b/c:d:");
	agent_mount_describe(&m, desc, sizeof(desc));
	assert_string_equal(desc, "tmpfs at /a/b/c:d:");
	mount_parses("bind:/srv/x:rw:/procfs/sysx", true, &m);
	assert_int_equal(m.type, AGENT_MOUNT_BIND);
	assert_string_equal(m.source, "/srv/x");
	assert_string_equal(m.dest, "procfs/sysx");
	mount_parses("9p:1234567890123456789012345678901:rw:/x", false, &m);
	assert_string_equal(m.subdir, "");
	/* A directory of a share (a pod member's volume). */
	mount_parses("9p:pod/c1-2/data.d:rw:/data", false, &m);
	assert_int_equal(m.type, AGENT_MOUNT_9P);
	assert_string_equal(m.source, "pod");
	assert_string_equal(m.subdir, "c1-2/data.d");
	assert_false(m.readonly);
	agent_mount_describe(&m, desc, sizeof(desc));
	assert_string_equal(desc, "9p:pod/c1-2/data.d at /data");
}

static void malformed_mount_strings_are_refused(void **state)
{
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
	    {"", "want TYPE"},
	    {"tmpfs:", "want TYPE"},
	    {"tmpfs::rw", "want TYPE"},
	    {"9P:v:rw:/x", "unknown type"},
	    {":v:rw:/x", "unknown type"},
	    {"9p::rw:/x", "9p tag"},
	    {"9p:a b:rw:/x", "9p tag"},
	    {"9p:12345678901234567890123456789012:rw:/x", "9p tag"},
	    {"tmpfs:x:rw:/x", "no source"},
	    {"9p:v::/x", "ro or rw"},
	    {"9p:v:RO:/x", "ro or rw"},
	    {"9p:v:rwx:/x", "ro or rw"},
	    {"9p:v:ro:", "not absolute"},
	    {"9p:v:ro:x/y", "not absolute"},
	    {"9p:v:ro:/", "'/'"},
	    {"9p:v:ro:/././/", "'/'"},
	    {"9p:v:ro:/..", "'..'"},
	    {"9p:v:ro:/a/../b", "'..'"},
	    {"9p:v:ro:/a/..", "'..'"},
	    {"9p:v:ro:/proc", "/proc or /sys"},
	    {"9p:v:ro://sys/kernel", "/proc or /sys"},
	    {"bind:/srv:rw:/x", "only for the agent on the host"},
	    {"9p:pod/:rw:/x", "empty component"},
	    {"9p:pod//a:rw:/x", "empty component"},
	    {"9p:pod/a/:rw:/x", "empty component"},
	    {"9p:/a:rw:/x", "9p tag"},
	    {"9p:p d/a:rw:/x", "9p tag"},
	    {"9p:pod/../a:rw:/x", "'.' or '..'"},
	    {"9p:pod/a/..:rw:/x", "'.' or '..'"},
	    {"9p:pod/./a:rw:/x", "'.' or '..'"},
	    {"9p:pod/a b:rw:/x", "only letters"},
	    {"9p:pod/a\\b:rw:/x", "only letters"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mount_fails(bad[i].s, strlen(bad[i].s), false, bad[i].why);
	mount_fails("bind:srv:rw:/x", 14, true, "not absolute");
	mount_fails("bind::rw:/x", 11, true, "not absolute");
	mount_fails("tmpfs::rw:/a\0b", 14, false, "NUL");
	static char big[4400];
	/* A name longer than NAME_MAX, a path longer than PATH_MAX, and a
	 * value longer than the protocol allows. */
	snprintf(big, sizeof(big), "tmpfs::rw:/%0256d", 0);
	mount_fails(big, strlen(big), false, "too long");
	int n = snprintf(big, sizeof(big), "tmpfs::rw:");
	for (int i = 0; i < 20; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "/%0200d", i);
	snprintf(big + n, sizeof(big) - (size_t)n, "/%0100d", 0);
	mount_fails(big, strlen(big), false, "too long");
	memset(big, 'a', sizeof(big));
	memcpy(big, "tmpfs::rw:/", 11);
	mount_fails(big, 4201, false, "too long");
}

/* husk_agent_encode: one MOUNT per entry, in order, on CREATE only; the
 * codec refuses a 65th. */
static void encoder_carries_mounts_up_to_the_limit(void **state)
{
	const char *argv[] = {"sh", NULL};
	const char *mounts[HUSK_PROTO_MAX_MOUNTS + 2];
	char names[HUSK_PROTO_MAX_MOUNTS + 1][32];
	for (int i = 0; i <= HUSK_PROTO_MAX_MOUNTS; i++) {
		snprintf(names[i], sizeof(names[i]), "tmpfs::rw:/v%d", i);
		mounts[i] = names[i];
	}
	mounts[HUSK_PROTO_MAX_MOUNTS] = NULL;
	struct husk_run_request req = {.container_id = "c",
	                               .root_device = "serial:r",
	                               .argv = argv,
	                               .mounts = mounts,
	                               .pid_ns_of = "pause"};
	struct husk_proto_enc e;
	struct husk_error err;
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	assert_int_equal(
	    husk_agent_encode(&e, HUSK_FRAME_CREATE, 1, &req, &err), 0);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	struct husk_frame f = {.type = HUSK_FRAME_CREATE,
	                       .stream = 1,
	                       .len = (uint32_t)(e.len - HUSK_PROTO_HDR_SIZE),
	                       .payload = e.buf + HUSK_PROTO_HDR_SIZE};
	struct husk_str got[HUSK_PROTO_MAX_MOUNTS];
	assert_int_equal(husk_frame_strv(&f, HUSK_TAG_MOUNT, got,
	                                 HUSK_PROTO_MAX_MOUNTS, &err),
	                 HUSK_PROTO_MAX_MOUNTS);
	for (int i = 0; i < HUSK_PROTO_MAX_MOUNTS; i++) {
		assert_int_equal(got[i].len, strlen(names[i]));
		assert_memory_equal(got[i].ptr, names[i], got[i].len);
	}
	char ns[129];
	assert_int_equal(
	    husk_frame_str_buf(&f, HUSK_TAG_PID_NS_OF, ns, sizeof(ns), &err),
	    1);
	assert_string_equal(ns, "pause");
	/* EXEC has no volumes, and joins namespaces of its own kind. */
	husk_proto_enc_reset(&e);
	husk_agent_encode(&e, HUSK_FRAME_EXEC, 1, &req, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	f.type = HUSK_FRAME_EXEC;
	f.len = (uint32_t)(e.len - HUSK_PROTO_HDR_SIZE);
	f.payload = e.buf + HUSK_PROTO_HDR_SIZE;
	assert_int_equal(husk_frame_strv(&f, HUSK_TAG_MOUNT, got,
	                                 HUSK_PROTO_MAX_MOUNTS, &err),
	                 0);
	assert_int_equal(
	    husk_frame_str_buf(&f, HUSK_TAG_PID_NS_OF, ns, sizeof(ns), &err),
	    0);
	/* 65 */
	husk_proto_enc_reset(&e);
	mounts[HUSK_PROTO_MAX_MOUNTS] = names[HUSK_PROTO_MAX_MOUNTS];
	mounts[HUSK_PROTO_MAX_MOUNTS + 1] = NULL;
	husk_agent_encode(&e, HUSK_FRAME_CREATE, 1, &req, &err);
	assert_true(husk_proto_enc_end(&e, &err) < 0);
	assert_non_null(strstr(err.msg, "MOUNT"));
	assert_int_equal(e.len, 0);
	husk_proto_enc_free(&e);
}

/* The whole way on the host: husk_agent_run's CREATE carries the
 * volumes, a host-mode agent mounts them, and a busybox shell in the
 * container uses them. */
static void volume_root(const struct scratch *s)
{
	static const char *const dirs[] = {"root",      "root/bin", "root/etc",
	                                   "root/proc", "root/dev", "root/sys",
	                                   "root/tmp",  "rw",       "ro"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		assert_int_equal(mkdir(at(s, dirs[i]), 0755), 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp /bin/busybox %s", at(s, "root/bin"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(symlink("busybox", at(s, "root/bin/sh")), 0);
	/* A hostile image: /link points at the container's /etc. */
	assert_int_equal(symlink("/etc", at(s, "root/link")), 0);
	write_file(at(s, "ro/in"), "host\n", 0644);
}

static pid_t start_host_agent(const struct scratch *s, int fd)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid)
		return pid;
	/* What husk-agent --fd does first: containers' mounts stay in a
	 * namespace of the agent's own. */
	struct husk_error e;
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    agent_spawn_init_self(&e) < 0)
		_exit(2);
	struct agent_env env = {.host_mode = true, .state_dir = at(s, "state")};
	_exit(agent_serve(&env, fd, &e) == 0 ? 0 : 1);
}

static void host_agent_mounts_volumes(void **state)
{
	struct scratch *s = *state;
	if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0)
		skip();
	volume_root(s);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	pid_t agent = start_host_agent(s, sv[0]);
	close(sv[0]);
	char rw[128], ro[128];
	snprintf(rw, sizeof(rw), "bind:%s:rw:/data", at(s, "rw"));
	snprintf(ro, sizeof(ro), "bind:%s:ro:/link/ro", at(s, "ro"));
	const char *mounts[] = {rw, ro, "tmpfs::rw:/scratch", NULL};
	const char *argv[] = {
	    "/bin/sh", "-c",
	    "echo vol > /data/out || exit 3;"
	    "read l < /etc/ro/in && [ \"$l\" = host ] || exit 4;"
	    "(echo x > /etc/ro/x) 2>/dev/null && exit 5;"
	    "echo t > /scratch/t && read l < /scratch/t && [ $l = t ] || exit "
	    "6",
	    NULL};
	struct husk_run_request req = {.container_id = "vol",
	                               .root_device = at(s, "root"),
	                               .argv = argv,
	                               .mounts = mounts};
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct husk_run_io io = {.in_fd = -1,
	                         .out_fd = devnull,
	                         .err_fd = 2,
	                         .sig_fd = -1,
	                         .tty_fd = -1};
	struct husk_run_result res = {0};
	struct husk_error err = {0};
	int rc = husk_agent_run(sv[1], &req, &io, 20000, &res, &err);
	close(sv[1]);
	close(devnull);
	int st;
	assert_int_equal(waitpid(agent, &st, 0), agent);
	if (rc != 0)
		fail_msg("husk_agent_run: %d %s", rc, err.msg);
	assert_int_equal(res.exit_code, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	int fd = open(at(s, "rw/out"), O_RDONLY | O_CLOEXEC);
	char buf[16] = "";
	assert_true(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 4);
	close(fd);
	assert_string_equal(buf, "vol\n");
	assert_int_equal(access(at(s, "ro/x"), F_OK), -1);
}

static int volume_setup(void **state)
{
	return scratch_setup(state, "husk-vol");
}

/* ---- pods: PID_NS_OF ---- */

/* The host agent of the running pod test, for pod_teardown; -1 once it
 * has been waited for. */
static pid_t pod_agent = -1;

/* The volume test's root, plus the applets the pod tests run. */
static void pod_root(const struct scratch *s)
{
	volume_root(s);
	static const char *const applets[] = {"cat", "sleep", "true"};
	char path[256];
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "root/bin/%s", applets[i]);
		assert_int_equal(symlink("busybox", at(s, path)), 0);
	}
}

/* Pumps the session until stream id has exited. */
static void pump_until_exit(struct husk_mux *m, uint32_t id)
{
	struct husk_error err = {0};
	for (;;) {
		struct husk_mux_stream *st = husk_mux_stream(m, id);
		assert_non_null(st);
		if (st->exited)
			return;
		struct pollfd p[16];
		int n = husk_mux_pollfds(m, p, 16);
		assert_true(n > 0);
		assert_true(poll(p, (nfds_t)n, 20000) > 0);
		if (husk_mux_dispatch(m, p, n, &err) < 0)
			fail_msg("husk_mux_dispatch: %s", err.msg);
	}
}

static int devnull(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* Runs a container that prints its /proc/1/cmdline and every process's,
 * joining pid_ns_of's PID namespace (NULL: its own); what it printed goes
 * to out (at most cap bytes), its length is returned. */
static size_t list_processes(const struct scratch *s, struct husk_mux *m,
                             const char *id, const char *pid_ns_of, char *out,
                             size_t cap)
{
	const char *argv[] = {
	    "sh", "-c", "cat /proc/1/cmdline; echo; cat /proc/[0-9]*/cmdline",
	    NULL};
	struct husk_run_request req = {.container_id = id,
	                               .root_device = at(s, "root"),
	                               .argv = argv,
	                               .pid_ns_of = pid_ns_of};
	char path[64];
	snprintf(path, sizeof(path), "%s.out", id);
	int fd =
	    open(at(s, path), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	struct husk_error err = {0};
	int st = husk_mux_create(m, &req, -1, dup(fd), devnull(), &err);
	if (st < 0)
		fail_msg("create %s: %s", id, err.msg);
	assert_int_equal(husk_mux_start(m, (uint32_t)st, NULL, &err), 0);
	pump_until_exit(m, (uint32_t)st);
	assert_int_equal(husk_mux_stream(m, (uint32_t)st)->exit.exit_code, 0);
	husk_mux_release(m, (uint32_t)st);
	ssize_t n = pread(fd, out, cap, 0);
	close(fd);
	assert_true(n > 0);
	return (size_t)n;
}

/* Two containers of a pod share a PID namespace: the second sees the
 * first one's process as PID 1, a third without PID_NS_OF sees only its
 * own; joining a container that does not exist is refused. */
static void pod_members_share_a_pid_namespace(void **state)
{
	struct scratch *s = *state;
	if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0)
		skip();
	pod_root(s);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	pid_t agent = pod_agent = start_host_agent(s, sv[0]);
	close(sv[0]);
	struct husk_mux m;
	struct husk_error err = {0};
	assert_int_equal(husk_mux_init(&m, sv[1], 20000, &err), 0);

	const char *sleep_argv[] = {"sleep", "4321", NULL};
	struct husk_run_request pause = {.container_id = "pause",
	                                 .root_device = at(s, "root"),
	                                 .argv = sleep_argv};
	int a = husk_mux_create(&m, &pause, -1, devnull(), devnull(), &err);
	if (a < 0)
		fail_msg("create pause: %s", err.msg);
	assert_int_equal(husk_mux_start(&m, (uint32_t)a, NULL, &err), 0);

	static const char sleeper[] = "sleep\0"
	                              "4321";
	char out[16384];
	size_t n = list_processes(s, &m, "member", "pause", out, sizeof(out));
	if (n < sizeof(sleeper) || memcmp(out, sleeper, sizeof(sleeper)))
		fail_msg("the member's PID 1 is '%.*s'", (int)n, out);
	/* ...and it sees itself there too (its own sh -c). */
	assert_non_null(memmem(out, n, "/proc/1/cmdline", 15));

	n = list_processes(s, &m, "loner", NULL, out, sizeof(out));
	assert_true(n > 6 && !memcmp(out, "sh\0-c\0", 6));
	assert_null(memmem(out, n, sleeper, sizeof(sleeper)));

	/* A name that is no container of this agent. */
	struct husk_run_request stray = pause;
	stray.container_id = "stray";
	stray.pid_ns_of = "nosuch";
	assert_int_equal(
	    husk_mux_create(&m, &stray, -1, devnull(), devnull(), &err),
	    -ENOENT);
	assert_non_null(strstr(err.msg, "container nosuch does not exist"));

	/* PID 1 of its namespace ignores SIGTERM; SIGKILL ends it. */
	assert_int_equal(husk_mux_signal(&m, (uint32_t)a, SIGKILL, &err), 0);
	pump_until_exit(&m, (uint32_t)a);
	assert_int_equal(husk_mux_stream(&m, (uint32_t)a)->exit.exit_code, 137);
	assert_int_equal(husk_mux_shutdown(&m, &err), 0);
	husk_mux_free(&m);
	int st;
	assert_int_equal(waitpid(agent, &st, 0), agent);
	pod_agent = -1;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The next frame of type on stream, skipping others; fails on EOF. */
static struct husk_frame frame_on(struct peer *p, uint32_t stream,
                                  unsigned type)
{
	for (;;) {
		struct husk_frame f = next_frame(p);
		if (f.type == 0)
			fail_msg("no %s on stream %u",
			         husk_proto_type_name(type), stream);
		if (f.stream == stream && f.type == type)
			return f;
	}
}

static void raw_create(struct peer *p, struct husk_proto_enc *e,
                       uint32_t stream, const char *id, const char *root,
                       const char *pid_ns_of)
{
	const char *argv[] = {"true", NULL};
	struct husk_run_request req = {.container_id = id,
	                               .root_device = root,
	                               .argv = argv,
	                               .pid_ns_of = pid_ns_of};
	struct husk_error err;
	assert_int_equal(
	    husk_agent_encode(e, HUSK_FRAME_CREATE, stream, &req, &err), 0);
	assert_int_equal(husk_proto_enc_end(e, &err), 0);
	send_enc(p, e);
}

static void raw_request(struct peer *p, struct husk_proto_enc *e, unsigned type,
                        uint32_t stream)
{
	struct husk_error err;
	husk_proto_enc_begin(e, type, 0, stream, &err);
	assert_int_equal(husk_proto_enc_end(e, &err), 0);
	send_enc(p, e);
}

/* ERROR's errno and message for a request on stream. */
static uint32_t error_on(struct peer *p, uint32_t stream, char *msg, size_t cap)
{
	struct husk_error err;
	struct husk_frame f = frame_on(p, stream, HUSK_FRAME_ERROR);
	uint32_t code = 0;
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_ERRNO, &code, &err), 1);
	assert_true(husk_frame_str_buf(&f, HUSK_TAG_MESSAGE, msg, cap, &err) >=
	            0);
	return code;
}

/* Whether pid has ended: a zombie, or gone. */
static bool has_ended(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	const char *paren = strrchr(buf, ')');
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

/* Joining a container whose first process has ended: ESRCH while the
 * host has not collected its EXIT, ENOENT once it has (the container is
 * gone). A host agent refuses a share's directory as a root. */
static void joining_an_ended_container_is_refused(void **state)
{
	struct scratch *s = *state;
	if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0)
		skip();
	pod_root(s);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	                 0);
	struct peer p = {.pid = start_host_agent(s, sv[0]), .fd = sv[1]};
	pod_agent = p.pid;
	close(sv[0]);
	husk_proto_reader_init(&p.reader, HUSK_SIDE_HOST);
	struct husk_proto_enc e;
	struct husk_error err;
	char msg[1025];
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	hello(&p, &e);

	raw_create(&p, &e, 1, "gone", at(s, "root"), NULL);
	frame_on(&p, 1, HUSK_FRAME_CREATE);
	raw_request(&p, &e, HUSK_FRAME_START, 1);
	struct husk_frame f = frame_on(&p, 1, HUSK_FRAME_START);
	uint32_t pid = 0;
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_PID, &pid, &err), 1);
	/* The host agent shares the test's PID namespace. */
	for (int i = 0; i < 2000 && !has_ended((pid_t)pid); i++)
		usleep(5000);
	assert_true(has_ended((pid_t)pid));
	raw_create(&p, &e, 3, "late", at(s, "root"), "gone");
	assert_int_equal(error_on(&p, 3, msg, sizeof(msg)), ESRCH);
	assert_non_null(strstr(msg, "container gone is not running"));

	raw_request(&p, &e, HUSK_FRAME_WAIT, 1);
	frame_on(&p, 1, HUSK_FRAME_EXIT);
	raw_create(&p, &e, 5, "later", at(s, "root"), "gone");
	assert_int_equal(error_on(&p, 5, msg, sizeof(msg)), ENOENT);
	assert_non_null(strstr(msg, "container gone does not exist"));

	raw_create(&p, &e, 7, "shared", "9p:pod/c1", NULL);
	assert_int_equal(error_on(&p, 7, msg, sizeof(msg)), EINVAL);
	assert_non_null(strstr(msg, "9p shares exist only in a VM"));

	raw_request(&p, &e, HUSK_FRAME_SHUTDOWN, 0);
	f = frame_on(&p, 0, HUSK_FRAME_SHUTDOWN);
	assert_true(f.flags & HUSK_FRAME_REPLY);
	assert_int_equal(finish(&p), 0);
	pod_agent = -1;
	husk_proto_enc_free(&e);
}

static int pod_setup(void **state)
{
	return scratch_setup(state, "husk-pod");
}

/* A failed check leaves the host agent running (with a container or two,
 * which die with it: PR_SET_PDEATHSIG). */
static int pod_teardown(void **state)
{
	if (pod_agent > 0) {
		kill(pod_agent, SIGKILL);
		waitpid(pod_agent, NULL, 0);
		pod_agent = -1;
	}
	return scratch_teardown(state);
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
	    cmocka_unit_test(malformed_mounts_are_refused_by_the_agent),
	    cmocka_unit_test(share_root_devices_are_checked),
	    cmocka_unit_test(mount_strings_are_split_and_normalised),
	    cmocka_unit_test(malformed_mount_strings_are_refused),
	    cmocka_unit_test(encoder_carries_mounts_up_to_the_limit),
	    cmocka_unit_test_setup_teardown(host_agent_mounts_volumes,
	                                    volume_setup, scratch_teardown),
	    cmocka_unit_test_setup_teardown(pod_members_share_a_pid_namespace,
	                                    pod_setup, pod_teardown),
	    cmocka_unit_test_setup_teardown(
	        joining_an_ended_container_is_refused, pod_setup, pod_teardown),
	    cmocka_unit_test(client_refuses_output_beyond_credit),
	    cmocka_unit_test(client_refuses_a_second_exit),
	    cmocka_unit_test(client_reports_an_agent_that_vanishes),
	    cmocka_unit_test(client_takes_a_well_behaved_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
