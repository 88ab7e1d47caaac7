/* The pod daemon's frame router: one agent channel, many members, each
 * speaking the agent protocol as if the agent were theirs. A member's
 * stream ids are its own; the router gives each CREATE or EXEC a fresh
 * agent-side id (never reused) and rewrites the header's stream field
 * both ways. It reads only headers: members decode and check every frame
 * the agent sends (the agent is not trusted), and the agent checks the
 * members'. */
#ifndef HUSK_RUNTIME_POD_ROUTER_H
#define HUSK_RUNTIME_POD_ROUTER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"

#define POD_MAX_MEMBERS 64
#define POD_MAX_ROUTES  (POD_MAX_MEMBERS * 64)
/* A member that leaves this much of the agent's output unread is stuck;
 * stdio is bounded by credit, so only a member that stopped reading
 * gets here. */
#define POD_MEMBER_OUT_MAX (64u << 20)

struct pod_buf {
	uint8_t *p;
	size_t len, cap;
};

struct pod_conn {
	int fd; /* -1: free */
	struct pod_buf in, out;
	bool hello_sent; /* the agent's HELLO went to this member */
	bool hello_got;  /* its own HELLO came */
};

struct pod_route {
	int member; /* -1: free */
	uint32_t msid, asid;
};

struct pod_router {
	struct pod_conn agent;
	struct pod_conn members[POD_MAX_MEMBERS];
	struct pod_route routes[POD_MAX_ROUTES];
	uint32_t next_asid;
	struct pod_buf agent_hello; /* the agent's HELLO frame, as sent */
	int nmembers;
	bool agent_gone;       /* EOF or a broken frame from the agent */
	bool shutdown_acked;   /* the agent answered our SHUTDOWN */
	struct husk_error why; /* why the agent is gone */
};

/* Takes agent_fd and queues our HELLO to it. */
int pod_router_init(struct pod_router *r, int agent_fd, struct husk_error *err);
void pod_router_free(struct pod_router *r);
/* Takes a member's connection; EAGAIN when full. */
int pod_router_add(struct pod_router *r, int fd, struct husk_error *err);
/* The agent's HELLO has come: the VM is up. */
bool pod_router_ready(const struct pod_router *r);
/* Queues SHUTDOWN to the agent (the last member has gone). */
int pod_router_shutdown(struct pod_router *r, struct husk_error *err);
/* Fills p (agent first, then members); returns the count. */
int pod_router_pollfds(struct pod_router *r, struct pollfd *p, int cap);
/* Handles what poll said about the entries pod_router_pollfds filled. */
void pod_router_dispatch(struct pod_router *r, const struct pollfd *p, int n);

#endif
