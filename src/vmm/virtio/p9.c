/* virtio-9p; see p9.h. The transport part only: a chain's readable part
 * is copied into a host buffer through the walker's checked copy, the
 * server answers into another, and that is copied into the chain's
 * writable part. The server never sees a guest address. */
#include "p9.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../log.h"
#include "../p9/p9_proto.h"
#include "../p9/p9_server.h"

struct p9dev {
	struct p9_server srv;
	uint8_t config[2 + VIRTIO_9P_MAX_TAG];
	uint32_t config_size;
	/* Scratch for the chain being served and its message both ways
	 * (too big for a vCPU thread's stack). Only touched under d->lock. */
	struct virtq_chain chain;
	uint8_t req[P9_MAX_MSIZE];
	uint8_t resp[P9_MAX_MSIZE];
};

static const struct virtio_dev_ops p9_ops;

bool virtio_p9_tag_ok(const char *tag)
{
	size_t n = tag ? strlen(tag) : 0;
	if (n == 0 || n > VIRTIO_9P_MAX_TAG)
		return false;
	for (const char *c = tag; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return false;
	return true;
}

static uint32_t serve_chain(struct virtio_dev *d, const struct virtq_chain *c)
{
	struct p9dev *p = d->priv;
	/* Shorter than a header: no tag to answer with. Completed (the
	 * ring is intact) with nothing written. */
	if (c->readable < P9_HDR_SIZE || c->writable == 0) {
		vmm_debug("virtio-9p: request %u: no room for a message",
		          c->head);
		return 0;
	}
	uint64_t len = c->readable < P9_MAX_MSIZE ? c->readable : P9_MAX_MSIZE;
	len = virtq_chain_read(d->mem, c, 0, p->req, len);
	uint64_t cap = c->writable < P9_MAX_MSIZE ? c->writable : P9_MAX_MSIZE;
	uint32_t n = p9_server_handle(&p->srv, p->req, (size_t)len, p->resp,
	                              (size_t)cap);
	if (n == 0)
		return 0;
	return (uint32_t)virtq_chain_write(d->mem, c, 0, p->resp, n);
}

static void p9_notify(struct virtio_dev *d, uint16_t qi)
{
	struct p9dev *p = d->priv;
	if (qi == 0 && p)
		virtio_dev_serve_queue(d, qi, &p->chain, serve_chain);
}

static void p9_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data,
                           uint32_t len)
{
	const struct p9dev *p = d->priv;
	if (!p || offset > p->config_size || len > p->config_size - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, p->config + offset, len);
}

/* A reset ends the 9P session: the driver starts again with Tversion. */
static void p9_reset(struct virtio_dev *d)
{
	struct p9dev *p = d->priv;
	if (!p)
		return;
	p9_fid_clear(&p->srv.fids);
	p->srv.msize = 0;
}

static const struct virtio_dev_ops p9_ops = {
    .name = "9p",
    .device_id = VIRTIO_ID_9P,
    .config_read = p9_config_read,
    .config_write = NULL, /* the tag is read-only */
    .notify = p9_notify,
    .reset = p9_reset,
};

/* Each fid holds up to three descriptors and a device allows P9_MAX_FIDS
 * of them: far past the usual soft limit of 1024. Raise the soft limit
 * to the hard one (before the sandbox, which forbids setrlimit); a guest
 * that still runs out gets EMFILE for its own request. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int virtio_p9_init(struct virtio_dev *d, const struct guest_mem *mem,
                   const struct virtio_p9_config_opts *o,
                   struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	if (!o || !virtio_p9_tag_ok(o->tag))
		return husk_err(err, EINVAL,
		                "virtio-9p: tag must be 1..%d of A-Z a-z 0-9 "
		                "_ -",
		                VIRTIO_9P_MAX_TAG);
	if (!o->path || !o->path[0])
		return husk_err(err, EINVAL, "virtio-9p: no directory");
	struct p9dev *p = calloc(1, sizeof(*p));
	if (!p)
		return husk_err(err, ENOMEM, "virtio-9p: out of memory");
	int rc = p9_server_init(&p->srv, o->path, o->read_only, err);
	if (rc < 0) {
		free(p);
		return rc;
	}
	raise_nofile();
	size_t n = strlen(o->tag);
	uint16_t tl = htole16((uint16_t)n);
	memcpy(p->config, &tl, 2);
	memcpy(p->config + 2, o->tag, n);
	p->config_size = (uint32_t)(2 + n);
	uint64_t features = 1ULL << VIRTIO_9P_F_MOUNT_TAG |
	                    1ULL << VIRTIO_RING_F_INDIRECT_DESC |
	                    1ULL << VIRTIO_RING_F_EVENT_IDX;
	virtio_dev_init(d, &p9_ops, p, mem, 1, features, p->config_size);
	return 0;
}

void virtio_p9_destroy(struct virtio_dev *d)
{
	if (d->ops != &p9_ops)
		return;
	struct p9dev *p = d->priv;
	if (p) {
		p9_server_destroy(&p->srv);
		free(p);
	}
	d->priv = NULL;
}
