/* libFuzzer target: the host's side of a run (src/lib/agent_client.c)
 * fed the bytes of a hostile agent: output past its credit, replies out of
 * order, EXIT twice, garbage. When byte 0 has bit 0 set a valid HELLO and
 * CREATE reply go first, so the fuzzer reaches the running phase at once.
 * The client must return (an exit status or an error), never crash. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk/agent_client.h"
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
	static int devnull = -1;
	if (devnull < 0) {
		signal(SIGPIPE, SIG_IGN);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	}
	if (size < 1)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (data[0] & 1) {
		struct husk_proto_enc enc;
		struct husk_error e;
		husk_proto_enc_init_alloc(&enc, HUSK_SIDE_AGENT);
		husk_proto_enc_hello(&enc, "fuzz", &e);
		husk_proto_enc_begin(&enc, HUSK_FRAME_CREATE, HUSK_FRAME_REPLY,
		                     1, &e);
		husk_proto_enc_end(&enc, &e);
		write_all(sv[1], enc.buf, enc.len);
		husk_proto_enc_free(&enc);
	}
	write_all(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);
	pthread_t t;
	pthread_create(&t, NULL, drain, &sv[1]);
	const char *argv[] = {"true", NULL};
	struct husk_run_request req = {
	    .container_id = "fuzz", .root_device = "serial:root", .argv = argv};
	struct husk_run_io io = {.in_fd = -1,
	                         .out_fd = devnull,
	                         .err_fd = devnull,
	                         .sig_fd = -1,
	                         .tty_fd = -1};
	struct husk_run_result res;
	struct husk_error err;
	husk_agent_run(sv[0], &req, &io, 200, &res, &err);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}
