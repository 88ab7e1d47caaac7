/* Split virtqueue walker; see virtq.h for the contract.
 *
 * Ring layout (virtio 1.x, all fields little-endian):
 *   descriptor table: num x { le64 addr; le32 len; le16 flags; le16 next; }
 *   avail ring: le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   used ring:  le16 flags; le16 idx; { le32 id; le32 len; } ring[num];
 *               le16 avail_event;
 */
#include "virtq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define DESC_SIZE 16u

/* Host pointers to the three rings, looked up again on every call so that
 * struct virtq stays plain, snapshot-able data. */
struct rings {
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
};

/* A descriptor as copied out of guest memory: the only copy ever used. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* The 16-bit ring indices are shared with a driver running on another
 * vCPU; atomic accesses keep each a single, untorn load or store. Rings are
 * aligned (checked in map_rings, and guest_mem keeps host alignment equal
 * to guest alignment), so the casts are to aligned addresses. */
static uint16_t load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p,
	                               __ATOMIC_RELAXED));
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static uint8_t *avail_slot(const struct rings *r, uint32_t i)
{
	return r->avail + 4 + 2 * i; /* i == num is used_event */
}

static uint8_t *used_slot(const struct rings *r, uint32_t i)
{
	return r->used + 4 + 8 * i; /* i == num is avail_event */
}

/* Copies descriptor i of table once, then parses the copy. The compiler
 * barrier keeps the compiler from dropping the copy and re-reading guest
 * memory later, which would reopen the double-fetch hole. */
static void fetch_desc(const uint8_t *table, uint32_t i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;

	memcpy(raw, table + (size_t)i * DESC_SIZE, sizeof(raw));
	__asm__ __volatile__("" ::: "memory");
	memcpy(&addr, raw, 8);
	memcpy(&len, raw + 8, 4);
	memcpy(&flags, raw + 12, 2);
	memcpy(&next, raw + 14, 2);
	d->addr = le64toh(addr);
	d->len = le32toh(len);
	d->flags = le16toh(flags);
	d->next = le16toh(next);
}

static int map_rings(const struct guest_mem *m, const struct virtq *q,
                     struct rings *r, struct husk_error *err)
{
	uint32_t num = q->num;

	if (num == 0 || num > VIRTQ_MAX_SIZE || (num & (num - 1)) != 0)
		return husk_err(
		    err, EINVAL,
		    "virtqueue size %u: not a power of two in 1..%u", num,
		    VIRTQ_MAX_SIZE);
	if (q->desc % 16 != 0)
		return husk_err(
		    err, EINVAL,
		    "virtqueue descriptor table at %#llx: not 16-byte "
		    "aligned",
		    (unsigned long long)q->desc);
	if (q->avail % 2 != 0)
		return husk_err(
		    err, EINVAL,
		    "virtqueue avail ring at %#llx: not 2-byte aligned",
		    (unsigned long long)q->avail);
	if (q->used % 4 != 0)
		return husk_err(
		    err, EINVAL,
		    "virtqueue used ring at %#llx: not 4-byte aligned",
		    (unsigned long long)q->used);

	r->desc = guest_ptr(m, q->desc, (uint64_t)DESC_SIZE * num);
	if (!r->desc)
		return husk_err(err, EFAULT,
		                "virtqueue descriptor table [%#llx, +%u): not "
		                "inside guest RAM",
		                (unsigned long long)q->desc, DESC_SIZE * num);
	r->avail = guest_ptr(m, q->avail, 6 + 2 * (uint64_t)num);
	if (!r->avail)
		return husk_err(err, EFAULT,
		                "virtqueue avail ring [%#llx, +%u): not inside "
		                "guest RAM",
		                (unsigned long long)q->avail, 6 + 2 * num);
	r->used = guest_ptr(m, q->used, 6 + 8 * (uint64_t)num);
	if (!r->used)
		return husk_err(err, EFAULT,
		                "virtqueue used ring [%#llx, +%u): not inside "
		                "guest RAM",
		                (unsigned long long)q->used, 6 + 8 * num);
	return 0;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

int virtq_validate(const struct guest_mem *m, const struct virtq *q,
                   struct husk_error *err)
{
	struct rings r;
	return map_rings(m, q, &r, err);
}

/* Appends the (non-indirect) descriptor d, descriptor idx of its table, to
 * c after checking it. */
static int add_buf(const struct guest_mem *m, struct virtq_chain *c,
                   const struct desc *d, uint32_t idx, bool in_indirect,
                   struct husk_error *err)
{
	const char *where = in_indirect ? "indirect descriptor" : "descriptor";
	bool writable = (d->flags & VIRTQ_DESC_F_WRITE) != 0;

	if (d->len == 0)
		return husk_err(err, EPROTO,
		                "virtqueue chain %u: %s %u has length 0",
		                c->head, where, idx);
	if (!guest_ptr(m, d->addr, d->len))
		return husk_err(
		    err, EFAULT,
		    "virtqueue chain %u: %s %u buffer [%#llx, +%u) is "
		    "not inside guest RAM",
		    c->head, where, idx, (unsigned long long)d->addr, d->len);
	/* len is never 0, so a non-zero writable total means a writable
	 * buffer came before. */
	if (!writable && c->writable != 0)
		return husk_err(
		    err, EPROTO,
		    "virtqueue chain %u: device-readable %s %u after a "
		    "device-writable one",
		    c->head, where, idx);
	if (c->n >= VIRTQ_MAX_CHAIN)
		return husk_err(err, EPROTO,
		                "virtqueue chain %u: more than %u buffers",
		                c->head, VIRTQ_MAX_CHAIN);
	/* Each total must fit the 32-bit length fields devices and the used
	 * ring deal in. Both start below 2^32, so the sum cannot wrap. */
	uint64_t *total = writable ? &c->writable : &c->readable;
	if (*total + d->len > UINT32_MAX)
		return husk_err(err, EPROTO,
		                "virtqueue chain %u: %s bytes exceed 4 GiB",
		                c->head, writable ? "writable" : "readable");
	*total += d->len;
	c->buf[c->n].addr = d->addr;
	c->buf[c->n].len = d->len;
	c->buf[c->n].device_writable = writable;
	c->n++;
	return 0;
}

/* Follows the chain at head through the descriptor table and at most one
 * indirect table. hops counts descriptors visited in the current table:
 * more than the table has entries means the chain loops. */
static int walk(const struct guest_mem *m, const struct virtq *q,
                const uint8_t *desc_table, uint16_t head, struct virtq_chain *c,
                struct husk_error *err)
{
	const uint8_t *table = desc_table;
	uint32_t table_n = q->num;
	bool in_indirect = false;
	uint32_t idx = head;
	uint32_t hops = 0;

	c->head = head;
	c->n = 0;
	c->readable = 0;
	c->writable = 0;

	for (;;) {
		const char *where =
		    in_indirect ? "indirect descriptor" : "descriptor";
		struct desc d;

		if (++hops > table_n)
			return husk_err(err, EPROTO,
			                "virtqueue chain %u: more than %u "
			                "descriptors in one table (a loop)",
			                head, table_n);
		fetch_desc(table, idx, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (in_indirect)
				return husk_err(err, EPROTO,
				                "virtqueue chain %u: nested "
				                "indirect descriptor %u",
				                head, idx);
			if (!q->indirect)
				return husk_err(
				    err, EPROTO,
				    "virtqueue chain %u: indirect "
				    "descriptor %u, but "
				    "INDIRECT_DESC was not negotiated",
				    head, idx);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return husk_err(
				    err, EPROTO,
				    "virtqueue chain %u: descriptor %u "
				    "has both INDIRECT and NEXT",
				    head, idx);
			if (d.len == 0 || d.len % DESC_SIZE != 0 ||
			    d.len / DESC_SIZE > VIRTQ_MAX_CHAIN)
				return husk_err(
				    err, EPROTO,
				    "virtqueue chain %u: indirect table "
				    "length %u is not a non-zero "
				    "multiple of %u up to %u entries",
				    head, d.len, DESC_SIZE, VIRTQ_MAX_CHAIN);
			table = guest_ptr(m, d.addr, d.len);
			if (!table)
				return husk_err(
				    err, EFAULT,
				    "virtqueue chain %u: indirect table "
				    "[%#llx, +%u) is not inside guest "
				    "RAM",
				    head, (unsigned long long)d.addr, d.len);
			/* The WRITE flag of this descriptor means nothing
			 * (virtio 1.x 2.7.5.3.2); the table's entries say. */
			table_n = d.len / DESC_SIZE;
			in_indirect = true;
			idx = 0;
			hops = 0;
			continue;
		}

		int rc = add_buf(m, c, &d, idx, in_indirect, err);
		if (rc < 0)
			return rc;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_n)
			return husk_err(
			    err, EPROTO,
			    "virtqueue chain %u: %s %u has next %u, "
			    "past the table's %u entries",
			    head, where, idx, d.next, table_n);
		idx = d.next;
	}
}

static int take(const struct guest_mem *m, struct virtq *q,
                struct virtq_chain *c, struct husk_error *err)
{
	struct rings r;

	if (!q->ready)
		return husk_err(err, EPROTO, "virtqueue used while not ready");
	int rc = map_rings(m, q, &r, err);
	if (rc < 0)
		return rc;

	/* One read of avail->idx per pop. The acquire fence orders it before
	 * the reads of the ring entry and descriptors the driver published
	 * with it. */
	uint16_t avail_idx = load16(r.avail + 2);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending > q->num)
		return husk_err(
		    err, EPROTO,
		    "virtqueue avail index jump: idx %u, %u past the "
		    "device's %u, queue size %u",
		    avail_idx, pending, q->last_avail, q->num);
	if (pending == 0)
		return 0;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	uint16_t head = load16(avail_slot(&r, q->last_avail & (q->num - 1u)));
	if (head >= q->num)
		return husk_err(
		    err, EPROTO,
		    "virtqueue avail ring slot %u: head %u is not below "
		    "queue size %u",
		    q->last_avail & (q->num - 1u), head, q->num);
	rc = walk(m, q, r.desc, head, c, err);
	if (rc < 0)
		return rc;
	q->last_avail++;
	return 1;
}

int virtq_pop(const struct guest_mem *m, struct virtq *q, struct virtq_chain *c,
              struct husk_error *err)
{
	if (q->broken)
		return husk_err(
		    err, EIO, "virtqueue is broken: the device needs a reset");
	int rc = take(m, q, c, err);
	if (rc < 0)
		q->broken = true;
	return rc;
}

int virtq_push(const struct guest_mem *m, struct virtq *q, uint16_t head,
               uint32_t written, struct husk_error *err)
{
	struct rings r;

	if (q->broken)
		return husk_err(
		    err, EIO, "virtqueue is broken: the device needs a reset");
	if (!q->ready)
		return husk_err(err, EINVAL, "virtqueue push while not ready");
	if (head >= q->num)
		return husk_err(err, EINVAL,
		                "virtqueue push of head %u, queue size %u",
		                head, q->num);
	/* Chains popped and not yet pushed: pushing with none outstanding
	 * would hand the driver a used entry it never offered. */
	uint16_t outstanding = (uint16_t)(q->last_avail - q->used_idx);
	if (outstanding == 0 || outstanding > q->num)
		return husk_err(err, EINVAL,
		                "virtqueue push of head %u with %u chains "
		                "outstanding",
		                head, outstanding);
	int rc = map_rings(m, q, &r, err);
	if (rc < 0) {
		q->broken = true;
		return rc;
	}

	uint8_t *elem = used_slot(&r, q->used_idx & (q->num - 1u));
	uint32_t id = htole32(head), len = htole32(written);
	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	/* The driver must see the element before the index that covers it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used_idx++;
	store16(r.used + 2, q->used_idx);
	return 0;
}

bool virtq_should_interrupt(const struct guest_mem *m, const struct virtq *q,
                            uint16_t used_before_push)
{
	struct rings r;

	if (q->used_idx == used_before_push)
		return false;
	if (map_rings(m, q, &r, NULL) < 0)
		return true;
	/* Store-load order: our used->idx store must be visible before we
	 * read the driver's suppression state, or a driver that just
	 * re-enabled interrupts and then checked used->idx could miss both. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* Interrupt when used_event lies in [old, new): the driver
		 * asked to hear once the device passes that entry. */
		uint16_t event = load16(avail_slot(&r, q->num));
		return (uint16_t)(q->used_idx - event - 1u) <
		       (uint16_t)(q->used_idx - used_before_push);
	}
	return !(load16(r.avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

int virtq_set_used_notify(const struct guest_mem *m, struct virtq *q,
                          bool enable, struct husk_error *err)
{
	struct rings r;

	if (q->broken)
		return husk_err(
		    err, EIO, "virtqueue is broken: the device needs a reset");
	if (!q->ready)
		return husk_err(err, EINVAL,
		                "virtqueue notify change while not ready");
	int rc = map_rings(m, q, &r, err);
	if (rc < 0) {
		q->broken = true;
		return rc;
	}
	if (q->event_idx) {
		/* With EVENT_IDX notifications cannot be switched off; not
		 * moving avail_event forward has the same effect, since the
		 * driver only kicks when its index passes it. */
		if (enable)
			store16(used_slot(&r, q->num), q->last_avail);
	} else {
		store16(r.used, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	if (!enable)
		return 0;
	/* A driver that added buffers while notifications were off did not
	 * kick; order our store before re-reading its index so one of us
	 * sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(r.avail + 2) != q->last_avail;
}

/* Copies between host memory and the readable (or writable) part of c,
 * starting offset bytes into that part: into to_host when it is not NULL,
 * else from from_host into the guest. */
static uint64_t chain_copy(const struct guest_mem *m,
                           const struct virtq_chain *c, bool writable,
                           uint64_t offset, uint8_t *to_host,
                           const uint8_t *from_host, uint64_t len)
{
	uint64_t done = 0;

	for (uint32_t i = 0; i < c->n && i < VIRTQ_MAX_CHAIN && done < len;
	     i++) {
		const struct virtq_buf *b = &c->buf[i];
		if (b->device_writable != writable)
			continue;
		if (offset >= b->len) {
			offset -= b->len;
			continue;
		}
		uint64_t n = b->len - offset;
		if (n > len - done)
			n = len - done;
		/* guest_ptr again: c is caller data, not trusted to still be
		 * what virtq_pop produced. */
		uint64_t gpa;
		if (__builtin_add_overflow(b->addr, offset, &gpa))
			break;
		uint8_t *g = guest_ptr(m, gpa, n);
		if (!g)
			break;
		if (to_host)
			memcpy(to_host + done, g, (size_t)n);
		else
			memcpy(g, from_host + done, (size_t)n);
		done += n;
		offset = 0;
	}
	return done;
}

uint64_t virtq_chain_read(const struct guest_mem *m,
                          const struct virtq_chain *c, uint64_t offset,
                          void *dst, uint64_t len)
{
	if (!dst)
		return 0;
	return chain_copy(m, c, false, offset, dst, NULL, len);
}

uint64_t virtq_chain_write(const struct guest_mem *m,
                           const struct virtq_chain *c, uint64_t offset,
                           const void *src, uint64_t len)
{
	if (!src)
		return 0;
	return chain_copy(m, c, true, offset, NULL, src, len);
}
