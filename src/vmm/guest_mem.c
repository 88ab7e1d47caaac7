#include "guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_SIZE_4K 4096ULL

/* Fills m->regions for size bytes of RAM. The host mapping is contiguous,
 * so each region's offset is the RAM below it. */
static void layout(struct guest_mem *m, uint64_t size)
{
	m->total = size;
	m->regions[0].gpa = 0;
	m->regions[0].offset = 0;
	if (size <= GUEST_MEM_HOLE_START) {
		m->regions[0].size = size;
		m->nregions = 1;
		return;
	}
	m->regions[0].size = GUEST_MEM_HOLE_START;
	m->regions[1].gpa = GUEST_MEM_HIGH_START;
	m->regions[1].size = size - GUEST_MEM_HOLE_START;
	m->regions[1].offset = GUEST_MEM_HOLE_START;
	m->nregions = 2;
}

int guest_mem_create(struct guest_mem *m, uint64_t size, struct husk_error *err)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;

	if (size < GUEST_MEM_MIN_SIZE || size > GUEST_MEM_MAX_SIZE ||
	    size % PAGE_SIZE_4K != 0)
		return husk_err(err, EINVAL,
		                "guest memory size %llu: must be a multiple of "
		                "4 KiB between %llu and %llu bytes",
		                (unsigned long long)size,
		                (unsigned long long)GUEST_MEM_MIN_SIZE,
		                (unsigned long long)GUEST_MEM_MAX_SIZE);
	if ((uint64_t)(size_t)size != size)
		return husk_err(err, EINVAL,
		                "guest memory size %llu: larger than the host "
		                "address space",
		                (unsigned long long)size);

	int fd =
	    memfd_create("husk-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return husk_err_errno(err, errno, "memfd_create guest memory");
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return husk_err_errno(err, e, "size guest memory to %llu bytes",
		                      (unsigned long long)size);
	}
	/* Shrinking the file under a live mapping would turn guest accesses
	 * into SIGBUS in the monitor; growing it has no use. Seal both. The
	 * write seal stays available for snapshots. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		int e = errno;
		close(fd);
		return husk_err_errno(err, e, "seal guest memory");
	}
	/* MAP_NORESERVE: RAM is allocated as the guest touches it, and a
	 * large mostly-idle guest must not be refused up front. */
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return husk_err_errno(err, e, "map %llu bytes of guest memory",
		                      (unsigned long long)size);
	}
	m->base = p;
	m->fd = fd;
	layout(m, size);
	return 0;
}

int guest_mem_wrap(struct guest_mem *m, void *buf, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (!buf || size == 0 || size > GUEST_MEM_MAX_SIZE ||
	    ((uintptr_t)buf & 15) != 0)
		return -EINVAL;
	m->base = buf;
	layout(m, size);
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	/* Only a created m owns anything: it has both a mapping and an fd.
	 * Checking base as well keeps an all-zero m (fd 0) from closing
	 * standard input. */
	if (m->base && m->fd >= 0) {
		munmap(m->base, (size_t)m->total);
		close(m->fd);
	}
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0 || !m->base)
		return NULL;
	for (unsigned i = 0; i < m->nregions && i < 2; i++) {
		const struct guest_mem_region *r = &m->regions[i];
		/* Written as subtractions from values already known to be in
		 * range, so no sum can wrap whatever gpa and len are. */
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off >= r->size || len > r->size - off)
			continue;
		return m->base + r->offset + off;
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
                   uint64_t len)
{
	if (len == 0)
		return 0;
	const void *p = guest_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, (size_t)len);
	return 0;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
                    uint64_t len)
{
	if (len == 0)
		return 0;
	void *p = guest_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, (size_t)len);
	return 0;
}
