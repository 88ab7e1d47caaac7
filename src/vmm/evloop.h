/* The main thread's event loop: epoll over host fds (console sockets,
 * the control socket, signals, the stop eventfd). Callbacks run on the
 * main thread; devices take their own lock inside them. Watching and
 * unwatching may also happen on a vCPU thread (a console peer found gone
 * while the guest writes), so the table has a lock of its own, never held
 * while a callback runs. */
#ifndef HUSK_VMM_EVLOOP_H
#define HUSK_VMM_EVLOOP_H

#include <pthread.h>
#include <stdint.h>

#include "husk/error.h"

typedef void (*evloop_fn)(void *opaque, uint32_t events);

#define EVLOOP_MAX 64

struct evloop {
	int epfd;
	pthread_mutex_t lock; /* guards entries[] */
	struct evloop_entry {
		int fd;
		evloop_fn fn;
		void *opaque;
	} entries[EVLOOP_MAX];
};

int evloop_init(struct evloop *l, struct husk_error *err);
void evloop_destroy(struct evloop *l);
/* Watches fd for events (EPOLLIN, EPOLLOUT); a second call changes them. */
int evloop_watch(struct evloop *l, int fd, uint32_t events, evloop_fn fn,
                 void *opaque);
void evloop_unwatch(struct evloop *l, int fd);
/* Dispatches one batch of ready events, waiting up to timeout_ms. */
int evloop_run_once(struct evloop *l, int timeout_ms);

#endif
