/* libFuzzer target: husk-agent's session (src/agent/session*.c) fed the
 * bytes of a hostile host. The input is the host's side of the channel;
 * when byte 0 has bit 0 set a valid HELLO goes first, so the fuzzer
 * reaches the requests at once. The agent runs for real, but its state
 * directory is under /proc, where nothing can be created, so a CREATE can
 * never mount or start anything: the target exercises the decoder,
 * dispatch, the error replies and the stdio/credit paths. A reader
 * thread drains what the agent answers, as a host would. Any crash,
 * sanitizer report or hang (libFuzzer's -timeout) is a finding. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/agent/process.h"
#include "../../src/agent/session.h"
#include "husk/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		struct husk_error e;
		signal(SIGPIPE, SIG_IGN);
		agent_spawn_init_self(&e);
		once = 1;
	}
	if (size < 1)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* The whole input fits the socket buffer: write it, then EOF. */
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (data[0] & 1) {
		struct husk_proto_enc enc;
		struct husk_error e;
		husk_proto_enc_init_alloc(&enc, HUSK_SIDE_HOST);
		husk_proto_enc_hello(&enc, "fuzz", &e);
		write_all(sv[1], enc.buf, enc.len);
		husk_proto_enc_free(&enc);
	}
	write_all(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);
	pthread_t t;
	pthread_create(&t, NULL, drain, &sv[1]);
	struct agent_env env = {.host_mode = false,
	                        .state_dir = "/proc/husk-fuzz-nowhere",
	                        .cgroup = NULL};
	struct husk_error err;
	agent_serve(&env, sv[0], &err);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}
