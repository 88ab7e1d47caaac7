#include "evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int evloop_init(struct evloop *l, struct husk_error *err)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	for (int i = 0; i < EVLOOP_MAX; i++)
		l->entries[i].fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return husk_err_errno(err, errno, "epoll_create1");
	return 0;
}

void evloop_destroy(struct evloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

static struct evloop_entry *find(struct evloop *l, int fd)
{
	for (int i = 0; i < EVLOOP_MAX; i++)
		if (l->entries[i].fd == fd)
			return &l->entries[i];
	return NULL;
}

int evloop_watch(struct evloop *l, int fd, uint32_t events, evloop_fn fn,
                 void *opaque)
{
	int rc = 0;
	pthread_mutex_lock(&l->lock);
	struct evloop_entry *e = find(l, fd);
	int op = EPOLL_CTL_MOD;
	if (!e) {
		e = find(l, -1);
		op = EPOLL_CTL_ADD;
	}
	if (!e) {
		rc = -ENOSPC;
	} else {
		struct epoll_event ev = {.events = events, .data.ptr = e};
		if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
			rc = -errno;
		else
			*e = (struct evloop_entry){fd, fn, opaque};
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void evloop_unwatch(struct evloop *l, int fd)
{
	pthread_mutex_lock(&l->lock);
	struct evloop_entry *e = find(l, fd);
	if (e) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		e->fd = -1;
	}
	pthread_mutex_unlock(&l->lock);
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event ev[16];
	int n = epoll_wait(l->epfd, ev, 16, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		/* Copy the entry under the lock: an earlier callback in this
		 * batch, or a vCPU thread, may have removed it meanwhile. */
		pthread_mutex_lock(&l->lock);
		struct evloop_entry e = *(struct evloop_entry *)ev[i].data.ptr;
		pthread_mutex_unlock(&l->lock);
		if (e.fd >= 0)
			e.fn(e.opaque, ev[i].events);
	}
	return n;
}
