/* virtio-blk; see blk.h for what is offered and how bad requests end.
 *
 * A request is one chain (virtio 1.2, 5.2.6):
 *   readable:  le32 type; le32 reserved; le64 sector; then OUT data
 *   writable:  IN or GET_ID data; then the 1-byte status, the part's last
 * The data of IN and OUT never passes through a host buffer: the chain's
 * buffers become an iovec list for preadv/pwritev.
 */
#include "blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../log.h"

struct blk {
	int fd;
	bool read_only;
	uint64_t capacity;                      /* in 512-byte sectors */
	char *path;                             /* for log lines */
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE]; /* little-endian image */
	uint8_t id[VIRTIO_BLK_ID_BYTES];        /* NUL-padded serial */
	/* Scratch for the request being served (about 8 KiB, too much for a
	 * vCPU thread's stack). Only touched under d->lock. */
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_CHAIN];
};

static const struct virtio_dev_ops blk_ops;

/* A malformed request: the guest's own doing, so a debug line only (a
 * guest must not be able to flood the host log), and IOERR for it. */
static uint8_t bad_request(const struct blk *b, const struct virtq_chain *c,
                           const char *why)
{
	vmm_debug("virtio-blk %s: request %u: %s", b->path, c->head, why);
	return VIRTIO_BLK_S_IOERR;
}

/* Host iovecs for bytes [skip, skip + len) of c's readable (or writable)
 * part. virtq_pop checked every buffer, but the pointers still come from
 * guest_ptr, the one way into guest memory. The count, or -1 when the part
 * is shorter or a piece is not in RAM. */
static int gather(const struct guest_mem *m, const struct virtq_chain *c,
                  bool writable, uint64_t skip, uint64_t len, struct iovec *iov)
{
	int n = 0;

	for (uint32_t i = 0; i < c->n && i < VIRTQ_MAX_CHAIN && len > 0; i++) {
		const struct virtq_buf *vb = &c->buf[i];
		if (vb->device_writable != writable)
			continue;
		if (skip >= vb->len) {
			skip -= vb->len;
			continue;
		}
		uint64_t take = vb->len - skip;
		if (take > len)
			take = len;
		uint64_t gpa;
		if (__builtin_add_overflow(vb->addr, skip, &gpa))
			return -1;
		void *p = guest_ptr(m, gpa, take);
		if (!p)
			return -1;
		iov[n].iov_base = p;
		iov[n].iov_len = (size_t)take;
		n++;
		len -= take;
		skip = 0;
	}
	return len == 0 ? n : -1;
}

/* Moves all of iov between the file at off and guest memory, riding out
 * EINTR and short transfers (which also split a request larger than one
 * syscall moves). 0, or a positive errno; *done is what was moved. iov is
 * consumed. */
static int transfer(int fd, bool write, struct iovec *iov, int iovcnt,
                    off_t off, uint64_t *done)
{
	*done = 0;
	while (iovcnt > 0) {
		ssize_t r = write ? pwritev(fd, iov, iovcnt, off)
		                  : preadv(fd, iov, iovcnt, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		/* Nothing moved with bytes left: the file shrank under us
		 * (read) or cannot grow (write); retrying would spin. */
		if (r == 0)
			return write ? ENOSPC : EIO;
		*done += (uint64_t)r;
		off += r;
		size_t left = (size_t)r;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* A host-side failure: worth one line in the log, never an abort. */
static void log_io_error(const struct blk *b, const char *what, uint64_t sector,
                         uint64_t len, int e)
{
	char buf[128];
	vmm_log("virtio-blk %s: %s of %llu bytes at sector %llu: %s", b->path,
	        what, (unsigned long long)len, (unsigned long long)sector,
	        strerror_r(e, buf, sizeof(buf)));
}

/* IN (write false) or OUT (write true). *data: bytes put in the writable
 * part. */
static uint8_t do_rw(struct virtio_dev *d, struct blk *b,
                     const struct virtq_chain *c, bool write, uint64_t sector,
                     uint64_t *data)
{
	/* The data is what lies between header and status: it sets the
	 * length, there being no length field. */
	uint64_t len =
	    write ? c->readable - VIRTIO_BLK_HDR_SIZE : c->writable - 1;

	if (write && b->read_only)
		return bad_request(b, c, "write to a read-only disk");
	if (len % VIRTIO_BLK_SECTOR_SIZE != 0)
		return bad_request(b, c, "data length not a multiple of 512");
	uint64_t nsect = len / VIRTIO_BLK_SECTOR_SIZE;
	/* Written as a subtraction from capacity so that a sector near
	 * UINT64_MAX cannot wrap the sum. */
	if (sector > b->capacity || nsect > b->capacity - sector)
		return bad_request(b, c, "sectors beyond the disk's end");

	int n = gather(d->mem, c, !write, write ? VIRTIO_BLK_HDR_SIZE : 0, len,
	               b->iov);
	if (n < 0)
		return bad_request(b, c, "data buffer not in guest RAM");

	/* sector + nsect <= capacity <= file size / 512, which fits off_t. */
	uint64_t done;
	int e = transfer(b->fd, write, b->iov, n,
	                 (off_t)(sector * VIRTIO_BLK_SECTOR_SIZE), &done);
	if (!write)
		*data = done;
	if (e) {
		log_io_error(b, write ? "write" : "read", sector, len, e);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_flush(struct blk *b)
{
	while (fdatasync(b->fd) < 0) {
		if (errno == EINTR)
			continue;
		char buf[128];
		vmm_log("virtio-blk %s: flush: %s", b->path,
		        strerror_r(errno, buf, sizeof(buf)));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(struct virtio_dev *d, struct blk *b,
                         const struct virtq_chain *c, uint64_t *data)
{
	/* The whole NUL-padded field, or as much as the driver made room
	 * for before the status byte. */
	uint64_t n = c->writable - 1;
	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	*data = virtq_chain_write(d->mem, c, 0, b->id, n);
	return VIRTIO_BLK_S_OK;
}

/* Serves one request whose chain has a writable byte for the status. */
static uint8_t do_request(struct virtio_dev *d, struct blk *b,
                          const struct virtq_chain *c, uint64_t *data)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE];
	uint32_t type;
	uint64_t sector;

	if (virtq_chain_read(d->mem, c, 0, hdr, sizeof(hdr)) != sizeof(hdr))
		return bad_request(b, c, "header shorter than 16 bytes");
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);

	switch (type) {
	case VIRTIO_BLK_T_IN: return do_rw(d, b, c, false, sector, data);
	case VIRTIO_BLK_T_OUT: return do_rw(d, b, c, true, sector, data);
	case VIRTIO_BLK_T_FLUSH: return do_flush(b);
	case VIRTIO_BLK_T_GET_ID: return do_get_id(d, b, c, data);
	default: return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Serves the chain; returns the used length: the bytes written into its
 * writable part, data and status byte. */
static uint32_t serve(struct virtio_dev *d, struct blk *b,
                      const struct virtq_chain *c)
{
	if (c->writable == 0) {
		/* No byte to report a status in. Completing it (rather than
		 * dropping it or setting NEEDS_RESET) keeps the ring's
		 * accounting whole and the device usable; the driver learns
		 * from used length 0 that nothing was written. */
		vmm_debug("virtio-blk %s: request %u: no writable status byte",
		          b->path, c->head);
		return 0;
	}
	uint64_t data = 0;
	uint8_t status = do_request(d, b, c, &data);
	/* data <= writable - 1 (it was written in front of the status), and
	 * the walker keeps writable below 2^32. */
	if (virtq_chain_write(d->mem, c, c->writable - 1, &status, 1) != 1)
		return (uint32_t)data;
	return (uint32_t)(data + 1);
}

static uint32_t serve_chain(struct virtio_dev *d, const struct virtq_chain *c)
{
	return serve(d, d->priv, c);
}

static void blk_notify(struct virtio_dev *d, uint16_t qi)
{
	struct blk *b = d->priv;
	if (qi == 0 && b)
		virtio_dev_serve_queue(d, qi, &b->chain, serve_chain);
}

static void blk_config_read(struct virtio_dev *d, uint32_t offset,
                            uint8_t *data, uint32_t len)
{
	const struct blk *b = d->priv;

	/* The transport checked the range; a cheap second check keeps a
	 * transport bug from reading past the image. */
	if (!b || offset > sizeof(b->config) ||
	    len > sizeof(b->config) - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + offset, len);
}

static const struct virtio_dev_ops blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .config_read = blk_config_read,
    .config_write = NULL, /* every field we expose is read-only */
    .notify = blk_notify,
    /* Requests complete inside notify, so a reset has nothing in flight
     * to drop. */
    .reset = NULL,
};

static void free_blk(struct blk *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b->path);
	free(b);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* Opens and sizes the backing file into b. */
static int open_backing(struct blk *b, const char *path, bool read_only,
                        struct husk_error *err)
{
	struct stat st;

	b->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		return husk_err_errno(err, errno, "virtio-blk: open %s", path);
	if (fstat(b->fd, &st) < 0)
		return husk_err_errno(err, errno, "virtio-blk: stat %s", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return husk_err(err, EINVAL,
		                "virtio-blk: %s is not a regular file or a "
		                "block device",
		                path);
	/* Not st_size: it is 0 for a block device. */
	off_t size = lseek(b->fd, 0, SEEK_END);
	if (size < 0)
		return husk_err_errno(err, errno, "virtio-blk: size of %s",
		                      path);
	if (size % VIRTIO_BLK_SECTOR_SIZE != 0)
		return husk_err(err, EINVAL,
		                "virtio-blk: %s is %lld bytes, not a multiple "
		                "of %d",
		                path, (long long)size, VIRTIO_BLK_SECTOR_SIZE);
	b->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
	b->read_only = read_only;
	return 0;
}

int virtio_blk_init(struct virtio_dev *d, const struct guest_mem *mem,
                    const struct virtio_blk_config_opts *o,
                    struct husk_error *err)
{
	struct blk *b = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	if (!o || !o->path || !o->path[0])
		return husk_err(err, EINVAL, "virtio-blk: no backing file");
	if (o->serial && strlen(o->serial) > VIRTIO_BLK_ID_BYTES)
		return husk_err(err, EINVAL,
		                "virtio-blk: serial '%s' is longer than %d "
		                "bytes",
		                o->serial, VIRTIO_BLK_ID_BYTES);
	b = calloc(1, sizeof(*b));
	if (!b)
		return husk_err(err, ENOMEM, "virtio-blk: out of memory");
	b->fd = -1;
	b->path = strdup(o->path);
	if (!b->path) {
		rc = husk_err(err, ENOMEM, "virtio-blk: out of memory");
		goto fail;
	}
	rc = open_backing(b, o->path, o->read_only, err);
	if (rc < 0)
		goto fail;

	const char *serial = o->serial;
	if (!serial) {
		const char *slash = strrchr(o->path, '/');
		serial = slash ? slash + 1 : o->path;
	}
	/* At most 20 bytes, NUL-padded (calloc did the padding); a 20-byte
	 * serial has no NUL, as the spec allows. */
	size_t n = strlen(serial);
	memcpy(b->id, serial, n < sizeof(b->id) ? n : sizeof(b->id));

	uint64_t cap = htole64(b->capacity);
	memcpy(b->config + VIRTIO_BLK_CFG_CAPACITY, &cap, 8);
	put_le32(b->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put_le32(b->config + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE);

	uint64_t features =
	    1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
	    1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
	    1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (o->read_only)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	virtio_dev_init(d, &blk_ops, b, mem, 1, features,
	                VIRTIO_BLK_CONFIG_SIZE);
	return 0;

fail:
	free_blk(b);
	return rc;
}

void virtio_blk_destroy(struct virtio_dev *d)
{
	if (d->ops != &blk_ops)
		return;
	free_blk(d->priv);
	d->priv = NULL;
}
