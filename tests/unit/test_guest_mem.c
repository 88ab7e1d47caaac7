#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

static void *aligned_buf(size_t size)
{
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, 64, size), 0);
	memset(p, 0, size);
	return p;
}

static void wrap_rejects_bad_arguments(void **state)
{
	struct guest_mem m;
	uint8_t *buf = aligned_buf(4096);
	assert_int_equal(guest_mem_wrap(&m, NULL, 4096), -EINVAL);
	assert_int_equal(guest_mem_wrap(&m, buf, 0), -EINVAL);
	assert_int_equal(guest_mem_wrap(&m, buf + 1, 4095), -EINVAL);
	assert_int_equal(m.fd, -1);
	assert_null(m.base);
	free(buf);
}

static void guest_ptr_bounds(void **state)
{
	struct guest_mem m;
	uint8_t *buf = aligned_buf(64 * KiB);
	assert_int_equal(guest_mem_wrap(&m, buf, 64 * KiB), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.fd, -1);

	assert_ptr_equal(guest_ptr(&m, 0, 64 * KiB), buf);
	assert_ptr_equal(guest_ptr(&m, 64 * KiB - 1, 1), buf + 64 * KiB - 1);
	assert_ptr_equal(guest_ptr(&m, 100, 28), buf + 100);
	assert_null(guest_ptr(&m, 0, 64 * KiB + 1));
	assert_null(guest_ptr(&m, 64 * KiB, 1));
	assert_null(guest_ptr(&m, 64 * KiB - 1, 2));
	assert_null(guest_ptr(&m, 0, 0));
	assert_null(guest_ptr(&m, 10, 0));
	free(buf);
}

static void guest_ptr_is_overflow_safe(void **state)
{
	struct guest_mem m;
	uint8_t *buf = aligned_buf(64 * KiB);
	assert_int_equal(guest_mem_wrap(&m, buf, 64 * KiB), 0);

	assert_null(guest_ptr(&m, UINT64_MAX, 1));
	assert_null(guest_ptr(&m, UINT64_MAX, UINT64_MAX));
	/* gpa + len wraps to a small in-range value. */
	assert_null(guest_ptr(&m, UINT64_MAX - 15, 32));
	assert_null(guest_ptr(&m, 16, UINT64_MAX));
	assert_null(guest_ptr(&m, 16, UINT64_MAX - 15));
	assert_null(guest_ptr(&m, 0, UINT64_MAX));
	assert_null(guest_ptr(&m, 1ULL << 63, 1ULL << 63));
	free(buf);
}

static void read_write_copy_or_fault(void **state)
{
	struct guest_mem m;
	uint8_t *buf = aligned_buf(8 * KiB);
	assert_int_equal(guest_mem_wrap(&m, buf, 8 * KiB), 0);

	const char msg[] = "hello guest";
	char back[sizeof(msg)] = {0};
	assert_int_equal(
	    guest_mem_write(&m, 8 * KiB - sizeof(msg), msg, sizeof(msg)), 0);
	assert_memory_equal(buf + 8 * KiB - sizeof(msg), msg, sizeof(msg));
	assert_int_equal(
	    guest_mem_read(&m, 8 * KiB - sizeof(msg), back, sizeof(back)), 0);
	assert_string_equal(back, msg);

	assert_int_equal(guest_mem_write(&m, 8 * KiB - 4, msg, sizeof(msg)),
	                 -EFAULT);
	assert_int_equal(guest_mem_read(&m, UINT64_MAX - 2, back, 8), -EFAULT);
	assert_int_equal(guest_mem_read(&m, 8 * KiB, back, 1), -EFAULT);
	/* Nothing to copy is not a fault. */
	assert_int_equal(guest_mem_read(&m, 0, back, 0), 0);
	free(buf);
}

static void create_rejects_bad_sizes(void **state)
{
	struct guest_mem m;
	struct husk_error e = {0};
	assert_int_equal(guest_mem_create(&m, 0, &e), -EINVAL);
	assert_int_equal(guest_mem_create(&m, MiB - 4096, &e), -EINVAL);
	assert_int_equal(guest_mem_create(&m, MiB + 1, &e), -EINVAL);
	assert_int_equal(guest_mem_create(&m, MiB + 2048, &e), -EINVAL);
	assert_int_equal(guest_mem_create(&m, GUEST_MEM_MAX_SIZE + 4096, &e),
	                 -EINVAL);
	assert_int_equal(guest_mem_create(&m, UINT64_MAX & ~4095ULL, &e),
	                 -EINVAL);
	assert_int_equal(e.code, EINVAL);
	assert_non_null(strstr(e.msg, "guest memory size"));
	/* A failed create leaves nothing to free. */
	assert_null(m.base);
	assert_int_equal(m.fd, -1);
	guest_mem_destroy(&m);
}

static void create_small_is_one_sealed_memfd(void **state)
{
	struct guest_mem m;
	struct husk_error e = {0};
	assert_int_equal(guest_mem_create(&m, 2 * MiB, &e), 0);
	assert_non_null(m.base);
	assert_true(m.fd >= 0);
	assert_int_equal(m.total, 2 * MiB);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 2 * MiB);
	assert_int_equal(m.regions[0].offset, 0);

	assert_int_equal(fcntl(m.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	int seals = fcntl(m.fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_int_equal(ftruncate(m.fd, MiB), -1);

	/* The mapping is MAP_SHARED over the memfd: a guest write is in the
	 * file, which is what snapshots will rely on. */
	uint32_t v = 0xfeedf00d, back = 0;
	assert_int_equal(guest_mem_write(&m, 2 * MiB - 4, &v, 4), 0);
	assert_int_equal(pread(m.fd, &back, 4, (off_t)(2 * MiB - 4)), 4);
	assert_int_equal(back, v);
	assert_null(guest_ptr(&m, 2 * MiB, 1));

	guest_mem_destroy(&m);
	assert_null(m.base);
	assert_int_equal(m.fd, -1);
	guest_mem_destroy(&m); /* twice is harmless */
}

static void create_exactly_3g_has_no_high_region(void **state)
{
	struct guest_mem m;
	struct husk_error e = {0};
	/* Sparse: MAP_NORESERVE over a memfd, only touched pages cost. */
	assert_int_equal(guest_mem_create(&m, GUEST_MEM_HOLE_START, &e), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.regions[0].size, GUEST_MEM_HOLE_START);
	assert_non_null(guest_ptr(&m, GUEST_MEM_HOLE_START - 1, 1));
	assert_null(guest_ptr(&m, GUEST_MEM_HOLE_START, 1));
	assert_null(guest_ptr(&m, GUEST_MEM_HIGH_START, 1));
	guest_mem_destroy(&m);
}

static void create_large_splits_around_the_hole(void **state)
{
	struct guest_mem m;
	struct husk_error e = {0};
	const uint64_t size = GUEST_MEM_HOLE_START + 2 * MiB;
	const uint64_t high_end = GUEST_MEM_HIGH_START + 2 * MiB;

	assert_int_equal(guest_mem_create(&m, size, &e), 0);
	assert_int_equal(m.total, size);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, GUEST_MEM_HOLE_START);
	assert_int_equal(m.regions[0].offset, 0);
	assert_int_equal(m.regions[1].gpa, GUEST_MEM_HIGH_START);
	assert_int_equal(m.regions[1].size, 2 * MiB);
	assert_int_equal(m.regions[1].offset, GUEST_MEM_HOLE_START);

	/* Low region: up to the hole, not into it. */
	assert_ptr_equal(guest_ptr(&m, GUEST_MEM_HOLE_START - 1, 1),
	                 m.base + GUEST_MEM_HOLE_START - 1);
	assert_null(guest_ptr(&m, GUEST_MEM_HOLE_START - 1, 2));
	assert_null(guest_ptr(&m, GUEST_MEM_HOLE_START, 1));
	assert_null(guest_ptr(&m, GUEST_MEM_HIGH_START - 1, 1));
	/* A range spanning the whole hole touches both regions: refused. */
	assert_null(guest_ptr(&m, GUEST_MEM_HOLE_START - 1,
	                      GUEST_MEM_HIGH_START - GUEST_MEM_HOLE_START + 2));
	assert_null(guest_ptr(&m, GUEST_MEM_HIGH_START - 1, 2));
	/* High region: gpa 4 GiB is mapping offset 3 GiB. */
	assert_ptr_equal(guest_ptr(&m, GUEST_MEM_HIGH_START, 2 * MiB),
	                 m.base + GUEST_MEM_HOLE_START);
	assert_ptr_equal(guest_ptr(&m, high_end - 1, 1), m.base + size - 1);
	assert_null(guest_ptr(&m, high_end - 1, 2));
	assert_null(guest_ptr(&m, high_end, 1));
	assert_null(guest_ptr(&m, GUEST_MEM_HIGH_START, UINT64_MAX));
	/* gpa = mapping offset would be inside the mapping but is the hole. */
	assert_null(guest_ptr(&m, size - 1, 1));

	/* Both regions are the same memfd at the offsets above. */
	uint64_t v = 0x1122334455667788ULL, back = 0;
	assert_int_equal(guest_mem_write(&m, GUEST_MEM_HIGH_START + 8, &v, 8),
	                 0);
	assert_int_equal(pread(m.fd, &back, 8, (off_t)GUEST_MEM_HOLE_START + 8),
	                 8);
	assert_int_equal(back, v);
	assert_int_equal(guest_mem_write(&m, GUEST_MEM_HOLE_START - 8, &v, 8),
	                 0);
	assert_int_equal(guest_mem_write(&m, GUEST_MEM_HOLE_START - 4, &v, 8),
	                 -EFAULT);
	guest_mem_destroy(&m);
}

static void destroy_zeroed_and_wrapped_is_harmless(void **state)
{
	struct guest_mem m;
	int open_before = fcntl(0, F_GETFD) >= 0;
	memset(&m, 0, sizeof(m)); /* fd 0 must not be closed */
	guest_mem_destroy(&m);
	assert_int_equal(m.fd, -1);
	assert_int_equal(fcntl(0, F_GETFD) >= 0, open_before);

	uint8_t *buf = aligned_buf(4096);
	assert_int_equal(guest_mem_wrap(&m, buf, 4096), 0);
	guest_mem_destroy(&m);
	buf[0] = 1; /* still ours: ASan would flag a free */
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(wrap_rejects_bad_arguments),
	    cmocka_unit_test(guest_ptr_bounds),
	    cmocka_unit_test(guest_ptr_is_overflow_safe),
	    cmocka_unit_test(read_write_copy_or_fault),
	    cmocka_unit_test(create_rejects_bad_sizes),
	    cmocka_unit_test(create_small_is_one_sealed_memfd),
	    cmocka_unit_test(create_exactly_3g_has_no_high_region),
	    cmocka_unit_test(create_large_splits_around_the_hole),
	    cmocka_unit_test(destroy_zeroed_and_wrapped_is_harmless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
