/* Relaying a process's stdio with the protocol's flow control: stdin
 * from the host is buffered only up to the credit the agent granted, and
 * output is read only while the host has granted credit for it, so a
 * slow side stalls its own stream and never the channel. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session_int.h"

void session_proc_free(struct session *s, struct proc *p)
{
	(void)s;
	for (int fd = 1; fd <= 2; fd++) {
		if (p->out[fd].fd >= 0)
			close(p->out[fd].fd);
	}
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
	if (p->start_fd >= 0)
		close(p->start_fd);
	if (p->report_fd >= 0)
		close(p->report_fd);
	free(p->in_buf);
	memset(p, 0, sizeof(*p));
}

static void close_stdin(struct proc *p)
{
	if (p->stdin_fd < 0)
		return;
	if (p->tty) {
		/* A terminal has no half-close: end-of-file is the EOF
		 * character, as when a person types ^D. */
		(void)!write(p->stdin_fd, "\x04", 1);
	}
	close(p->stdin_fd);
	p->stdin_fd = -1;
}

/* Returns credit for n bytes the host sent, once they are gone from our
 * buffer (written, or dropped because nobody reads stdin any more). */
static int give_back(struct session *s, struct proc *p, size_t n)
{
	if (!n)
		return 0;
	p->in_credit += (uint32_t)n;
	return session_send_fd_u32(s, HUSK_FRAME_CREDIT, p->stream,
	                           HUSK_FD_STDIN, HUSK_TAG_CREDIT, (uint32_t)n);
}

int session_stdin_data(struct session *s, struct proc *p, const uint8_t *data,
                       size_t n, struct husk_error *err)
{
	if (n > p->in_credit)
		return husk_err(
		    err, EPROTO,
		    "stream %u: %zu bytes of stdin exceed the credit "
		    "of %u",
		    p->stream, n, p->in_credit);
	if (p->in_closing)
		return husk_err(err, EPROTO, "stream %u: stdin after CLOSE",
		                p->stream);
	p->in_credit -= (uint32_t)n;
	if (p->stdin_fd < 0)
		return give_back(s, p, n);
	if (!p->in_buf) {
		p->in_buf = malloc(HUSK_PROTO_INITIAL_CREDIT);
		if (!p->in_buf)
			return husk_err(err, ENOMEM, "out of memory");
	}
	/* The credit we grant never exceeds the initial window, so what is
	 * buffered fits once the consumed prefix is moved out. */
	if (p->in_off) {
		memmove(p->in_buf, p->in_buf + p->in_off,
		        p->in_len - p->in_off);
		p->in_len -= p->in_off;
		p->in_off = 0;
	}
	if (p->in_len + n > HUSK_PROTO_INITIAL_CREDIT)
		return husk_err(err, EPROTO, "stream %u: stdin overflow",
		                p->stream);
	memcpy(p->in_buf + p->in_len, data, n);
	p->in_len += n;
	return p->started ? session_stdin_flush(s, p) : 0;
}

int session_stdin_flush(struct session *s, struct proc *p)
{
	size_t wrote = 0;
	while (p->stdin_fd >= 0 && p->in_off < p->in_len) {
		ssize_t n = write(p->stdin_fd, p->in_buf + p->in_off,
		                  p->in_len - p->in_off);
		if (n > 0) {
			p->in_off += (size_t)n;
			wrote += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* The process closed its stdin: what is left is dropped and
		 * credited back, as a pipe to a dead reader would. */
		wrote += p->in_len - p->in_off;
		p->in_off = p->in_len;
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
	if (p->in_off == p->in_len) {
		p->in_off = p->in_len = 0;
		if (p->in_closing)
			close_stdin(p);
	}
	return give_back(s, p, wrote);
}

int session_stdin_close(struct session *s, struct proc *p)
{
	p->in_closing = true;
	if (p->in_off == p->in_len)
		close_stdin(p);
	(void)s;
	return 0;
}

int session_credit(struct session *s, struct proc *p, unsigned fd,
                   uint32_t credit, struct husk_error *err)
{
	(void)s;
	if (fd != HUSK_FD_STDOUT && fd != HUSK_FD_STDERR)
		return husk_err(err, EPROTO, "stream %u: credit for fd %u",
		                p->stream, fd);
	uint64_t total = (uint64_t)p->out[fd].credit + credit;
	if (total > HUSK_PROTO_MAX_WINDOW)
		return husk_err(err, EPROTO,
		                "stream %u: credit %llu above the window",
		                p->stream, (unsigned long long)total);
	p->out[fd].credit = (uint32_t)total;
	return 0;
}

static int end_output(struct session *s, struct proc *p, unsigned fd)
{
	if (p->out[fd].eof)
		return 0;
	p->out[fd].eof = true;
	if (p->out[fd].fd >= 0) {
		close(p->out[fd].fd);
		p->out[fd].fd = -1;
	}
	int rc = session_send_fd_u32(s, HUSK_FRAME_CLOSE, p->stream, fd, 0, 0);
	if (rc < 0)
		return rc;
	return session_maybe_exit(s, p);
}

int session_output(struct session *s, struct proc *p, unsigned fd)
{
	static uint8_t buf[64 << 10];
	size_t want =
	    p->out[fd].credit < sizeof(buf) ? p->out[fd].credit : sizeof(buf);
	ssize_t n = read(p->out[fd].fd, buf, want);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	/* EIO is how a PTY master says that the terminal side is closed. */
	if (n <= 0)
		return end_output(s, p, fd);
	struct husk_error e = {0};
	unsigned type =
	    fd == HUSK_FD_STDOUT ? HUSK_FRAME_STDOUT : HUSK_FRAME_STDERR;
	husk_proto_enc_begin(&s->out, type, 0, p->stream, &e);
	husk_proto_enc_data(&s->out, buf, (size_t)n, &e);
	if (husk_proto_enc_end(&s->out, &e) < 0)
		return -e.code;
	p->out[fd].credit -= (uint32_t)n;
	return 0;
}
