/* See pod_router.h. */
#include "pod_router.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "husk/proto.h"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int buf_add(struct pod_buf *b, const void *data, size_t n)
{
	if (!n)
		return 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

static void buf_drop(struct pod_buf *b, size_t n)
{
	if (!n)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void conn_close(struct pod_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in.p);
	free(c->out.p);
	*c = (struct pod_conn){.fd = -1};
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Frames we make ourselves: to the agent as the host, and to a member as
 * the agent would (the reply to its SHUTDOWN). */
static int queue_made(struct pod_buf *to, enum husk_proto_side side,
                      unsigned type, unsigned flags, uint32_t stream, int sig,
                      struct husk_error *err)
{
	struct husk_proto_enc e;
	husk_proto_enc_init_alloc(&e, side);
	husk_proto_enc_begin(&e, type, flags, stream, err);
	if (sig)
		husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, (uint32_t)sig, err);
	int rc = husk_proto_enc_end(&e, err);
	if (rc >= 0 && buf_add(to, e.buf, e.len) < 0)
		rc = husk_err(err, ENOMEM, "pod router: out of memory");
	husk_proto_enc_free(&e);
	return rc;
}

int pod_router_init(struct pod_router *r, int agent_fd, struct husk_error *err)
{
	memset(r, 0, sizeof(*r));
	r->agent.fd = agent_fd;
	for (int i = 0; i < POD_MAX_MEMBERS; i++)
		r->members[i].fd = -1;
	for (int i = 0; i < POD_MAX_ROUTES; i++)
		r->routes[i].member = -1;
	r->next_asid = 1;
	set_nonblock(agent_fd);
	struct husk_proto_enc e;
	husk_proto_enc_init_alloc(&e, HUSK_SIDE_HOST);
	int rc = husk_proto_enc_hello(&e, "husk-runtime pod", err);
	if (rc >= 0 && buf_add(&r->agent.out, e.buf, e.len) < 0)
		rc = husk_err(err, ENOMEM, "pod router: out of memory");
	husk_proto_enc_free(&e);
	return rc;
}

void pod_router_free(struct pod_router *r)
{
	conn_close(&r->agent);
	for (int i = 0; i < POD_MAX_MEMBERS; i++)
		conn_close(&r->members[i]);
	free(r->agent_hello.p);
	r->agent_hello = (struct pod_buf){0};
}

bool pod_router_ready(const struct pod_router *r)
{
	return r->agent_hello.len > 0;
}

static void send_hello(struct pod_router *r, struct pod_conn *m)
{
	if (m->hello_sent || !pod_router_ready(r))
		return;
	if (buf_add(&m->out, r->agent_hello.p, r->agent_hello.len) == 0)
		m->hello_sent = true;
}

int pod_router_add(struct pod_router *r, int fd, struct husk_error *err)
{
	for (int i = 0; i < POD_MAX_MEMBERS; i++) {
		struct pod_conn *m = &r->members[i];
		if (m->fd >= 0)
			continue;
		*m = (struct pod_conn){.fd = fd};
		set_nonblock(fd);
		send_hello(r, m);
		r->nmembers++;
		return i;
	}
	return husk_err(err, EAGAIN, "the pod has %d members already",
	                POD_MAX_MEMBERS);
}

int pod_router_shutdown(struct pod_router *r, struct husk_error *err)
{
	return queue_made(&r->agent.out, HUSK_SIDE_HOST, HUSK_FRAME_SHUTDOWN, 0,
	                  0, 0, err);
}

/* A member left (or broke): its processes go with it, as a container's
 * go with its supervisor. The agent's answers about them find no route
 * and are dropped. */
static void member_gone(struct pod_router *r, int i)
{
	struct husk_error e = {0};
	for (int k = 0; k < POD_MAX_ROUTES; k++) {
		struct pod_route *rt = &r->routes[k];
		if (rt->member != i)
			continue;
		if (!r->agent_gone)
			queue_made(&r->agent.out, HUSK_SIDE_HOST,
			           HUSK_FRAME_SIGNAL, 0, rt->asid, SIGKILL, &e);
		rt->member = -1;
	}
	conn_close(&r->members[i]);
	r->nmembers--;
}

static struct pod_route *route_by_msid(struct pod_router *r, int member,
                                       uint32_t msid)
{
	for (int k = 0; k < POD_MAX_ROUTES; k++)
		if (r->routes[k].member == member && r->routes[k].msid == msid)
			return &r->routes[k];
	return NULL;
}

static struct pod_route *route_by_asid(struct pod_router *r, uint32_t asid)
{
	for (int k = 0; k < POD_MAX_ROUTES; k++)
		if (r->routes[k].member >= 0 && r->routes[k].asid == asid)
			return &r->routes[k];
	return NULL;
}

/* One whole frame from member i. */
static void from_member(struct pod_router *r, int i, uint8_t *f, size_t n)
{
	struct pod_conn *m = &r->members[i];
	unsigned type = f[4] | f[5] << 8, flags = f[6] | f[7] << 8;
	uint32_t stream = get_le32(f + 8);
	struct husk_error e = {0};
	if (!m->hello_got) {
		/* the agent's HELLO answers it (send_hello) */
		if (type != HUSK_FRAME_HELLO)
			member_gone(r, i);
		else
			m->hello_got = true;
		return;
	}
	if (flags & HUSK_FRAME_REPLY)
		return; /* only the agent replies */
	if (stream == 0) {
		if (type == HUSK_FRAME_SHUTDOWN)
			/* the member is done; the VM is the pod's */
			queue_made(&m->out, HUSK_SIDE_AGENT,
			           HUSK_FRAME_SHUTDOWN, HUSK_FRAME_REPLY, 0, 0,
			           &e);
		else if (type == HUSK_FRAME_ERROR)
			member_gone(r, i);
		return;
	}
	struct pod_route *rt = route_by_msid(r, i, stream);
	if (type == HUSK_FRAME_CREATE || type == HUSK_FRAME_EXEC) {
		for (int k = 0; !rt && k < POD_MAX_ROUTES; k++)
			if (r->routes[k].member < 0)
				rt = &r->routes[k];
		if (!rt)
			return; /* the member's own limit is lower */
		*rt = (struct pod_route){
		    .member = i, .msid = stream, .asid = r->next_asid++};
	}
	if (!rt)
		return;
	put_le32(f + 8, rt->asid);
	if (buf_add(&r->agent.out, f, n) < 0)
		member_gone(r, i);
}

static void agent_broke(struct pod_router *r, int code, const char *why)
{
	if (!r->agent_gone)
		husk_err(&r->why, code, "%s", why);
	r->agent_gone = true;
}

/* One whole frame from the agent. */
static void from_agent(struct pod_router *r, uint8_t *f, size_t n)
{
	unsigned type = f[4] | f[5] << 8;
	uint32_t stream = get_le32(f + 8);
	if (!pod_router_ready(r)) {
		if (type != HUSK_FRAME_HELLO || stream != 0 ||
		    buf_add(&r->agent_hello, f, n) < 0) {
			agent_broke(r, EPROTO,
			            "the agent did not begin with HELLO");
			return;
		}
		for (int i = 0; i < POD_MAX_MEMBERS; i++)
			if (r->members[i].fd >= 0)
				send_hello(r, &r->members[i]);
		return;
	}
	if (stream == 0) {
		if (type == HUSK_FRAME_SHUTDOWN)
			r->shutdown_acked = true;
		else if (type == HUSK_FRAME_ERROR) {
			/* the session is over: every member hears it */
			for (int i = 0; i < POD_MAX_MEMBERS; i++)
				if (r->members[i].fd >= 0)
					buf_add(&r->members[i].out, f, n);
			agent_broke(r, EPROTO, "the agent ended the session");
		}
		return;
	}
	struct pod_route *rt = route_by_asid(r, stream);
	if (!rt)
		return; /* about a member that has gone */
	int i = rt->member;
	put_le32(f + 8, rt->msid);
	if (type == HUSK_FRAME_EXIT)
		rt->member = -1; /* the stream's id is free on both sides */
	if (buf_add(&r->members[i].out, f, n) < 0 ||
	    r->members[i].out.len > POD_MEMBER_OUT_MAX)
		member_gone(r, i);
}

/* Splits c's input into frames. false: a header is out of bounds. */
static bool take_frames(struct pod_router *r, struct pod_conn *c, int member)
{
	size_t off = 0;
	while (c->in.len - off >= HUSK_PROTO_HDR_SIZE) {
		uint32_t len = get_le32(c->in.p + off);
		if (len > HUSK_PROTO_MAX_PAYLOAD)
			return false;
		size_t whole = HUSK_PROTO_HDR_SIZE + (size_t)len;
		if (c->in.len - off < whole)
			break;
		if (member < 0)
			from_agent(r, c->in.p + off, whole);
		else
			from_member(r, member, c->in.p + off, whole);
		off += whole;
		if (member >= 0 && r->members[member].fd < 0)
			return true; /* it went meanwhile */
	}
	buf_drop(&c->in, off);
	return true;
}

/* Reads what is there. false: EOF or an error. */
static bool read_in(struct pod_conn *c)
{
	uint8_t tmp[65536];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	return buf_add(&c->in, tmp, (size_t)n) == 0;
}

static bool write_out(struct pod_conn *c)
{
	while (c->out.len) {
		ssize_t n = write(c->fd, c->out.p, c->out.len);
		if (n < 0)
			return errno == EINTR || errno == EAGAIN;
		buf_drop(&c->out, (size_t)n);
	}
	return true;
}

int pod_router_pollfds(struct pod_router *r, struct pollfd *p, int cap)
{
	int n = 0;
	if (!r->agent_gone && n < cap)
		p[n++] = (struct pollfd){
		    .fd = r->agent.fd,
		    .events = POLLIN | (r->agent.out.len ? POLLOUT : 0)};
	for (int i = 0; i < POD_MAX_MEMBERS && n < cap; i++) {
		struct pod_conn *m = &r->members[i];
		if (m->fd >= 0)
			p[n++] = (struct pollfd){
			    .fd = m->fd,
			    .events = POLLIN | (m->out.len ? POLLOUT : 0)};
	}
	return n;
}

static int member_of(struct pod_router *r, int fd)
{
	for (int i = 0; i < POD_MAX_MEMBERS; i++)
		if (r->members[i].fd == fd)
			return i;
	return -1;
}

void pod_router_dispatch(struct pod_router *r, const struct pollfd *p, int n)
{
	for (int k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		if (p[k].fd == r->agent.fd && !r->agent_gone) {
			if ((p[k].revents & POLLOUT) && !write_out(&r->agent))
				agent_broke(r, EPIPE, "the agent went away");
			if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !read_in(&r->agent))
				agent_broke(r, ECONNRESET,
				            "the agent went away");
			if (!r->agent_gone && !take_frames(r, &r->agent, -1))
				agent_broke(
				    r, EPROTO,
				    "the agent sent an oversized frame");
			continue;
		}
		int i = member_of(r, p[k].fd);
		if (i < 0)
			continue;
		struct pod_conn *m = &r->members[i];
		if ((p[k].revents & POLLOUT) && !write_out(m)) {
			member_gone(r, i);
			continue;
		}
		if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    (!read_in(m) || !take_frames(r, m, i)))
			if (r->members[i].fd >= 0)
				member_gone(r, i);
	}
	/* A gone agent takes the session with it: members see EOF. */
	if (r->agent_gone)
		for (int i = 0; i < POD_MAX_MEMBERS; i++)
			if (r->members[i].fd >= 0) {
				write_out(&r->members[i]);
				member_gone(r, i);
			}
}
