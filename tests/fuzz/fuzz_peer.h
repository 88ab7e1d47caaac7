/* The hostile peer shared by the fuzz targets that drive one end of the
 * agent channel (fuzz_agent_client.c, fuzz_agent_session.c): a socketpair
 * whose sv[0] goes to the code under test while sv[1] plays the other
 * side. The input is the peer's bytes after byte 0; when byte 0 has bit 0
 * set a valid HELLO goes first. Header-only, since each tests/fuzz/fuzz_*.c
 * is built on its own; all static inline. */
#ifndef HUSK_FUZZ_PEER_H
#define HUSK_FUZZ_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk/proto.h"

/* Reads and drops everything from *(int *)arg until EOF or an error, as
 * the peer reading the answers would. */
static inline void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static inline void write_all(int fd, const void *p, size_t n)
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

/* Sets up the channel and writes the whole input as the peer (side), then
 * EOF: sv[1]'s send buffer is made large enough for it to be written
 * before anything reads. With byte 0 bit 0, a HELLO goes first and, with
 * create_reply, a successful REPLY to CREATE 1 after it. Starts *t draining
 * what the code under test answers. -1, with nothing to undo, for an empty
 * input or when no socketpair could be made. */
static inline int peer_start(int sv[2], pthread_t *t, const uint8_t *data,
                             size_t size, enum husk_proto_side side,
                             bool create_reply)
{
	if (size < 1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (data[0] & 1) {
		struct husk_proto_enc enc;
		struct husk_error e;
		husk_proto_enc_init_alloc(&enc, side);
		husk_proto_enc_hello(&enc, "fuzz", &e);
		if (create_reply) {
			husk_proto_enc_begin(&enc, HUSK_FRAME_CREATE,
			                     HUSK_FRAME_REPLY, 1, &e);
			husk_proto_enc_end(&enc, &e);
		}
		write_all(sv[1], enc.buf, enc.len);
		husk_proto_enc_free(&enc);
	}
	write_all(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);
	pthread_create(t, NULL, drain, &sv[1]);
	return 0;
}

/* After the code under test returned: closes its end, waits for the
 * drain and closes the peer's end. */
static inline void peer_close(int sv[2], pthread_t t)
{
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
}

#endif
