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
#include "fuzz_peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once) {
		struct husk_error e;
		signal(SIGPIPE, SIG_IGN);
		agent_spawn_init_self(&e);
		once = 1;
	}
	int sv[2];
	pthread_t t;
	if (peer_start(sv, &t, data, size, HUSK_SIDE_HOST, false) < 0)
		return 0;
	struct agent_env env = {.host_mode = false,
	                        .state_dir = "/proc/husk-fuzz-nowhere",
	                        .cgroup = NULL};
	struct husk_error err;
	agent_serve(&env, sv[0], &err);
	peer_close(sv, t);
	return 0;
}
