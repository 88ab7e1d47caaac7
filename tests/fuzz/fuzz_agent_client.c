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
#include "fuzz_peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	if (devnull < 0) {
		signal(SIGPIPE, SIG_IGN);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	}
	int sv[2];
	pthread_t t;
	if (peer_start(sv, &t, data, size, HUSK_SIDE_AGENT, true) < 0)
		return 0;
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
	peer_close(sv, t);
	return 0;
}
