/* A scratch directory per test, for the unit tests that make files
 * (test_rootfs_disk.c, test_vm_backend.c): scratch_setup() makes
 * /tmp/PREFIX.XXXXXX and hands a struct scratch over as cmocka's state,
 * scratch_teardown() removes the tree and frees it.
 *
 * Header-only, because the Makefile builds each tests/unit/test_*.c alone:
 * everything here is static inline, so a test pays only for what it uses. */
#ifndef HUSK_TESTS_UNIT_SCRATCH_H
#define HUSK_TESTS_UNIT_SCRATCH_H

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct scratch {
	char dir[64];
};

static inline int scratch_remove_one(const char *path, const struct stat *st,
                                     int flag, struct FTW *ftw)
{
	return remove(path);
}

/* prefix names the directory, "/tmp/PREFIX.XXXXXX"; short enough for
 * struct scratch. */
static inline int scratch_setup(void **state, const char *prefix)
{
	struct scratch *s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/%s.XXXXXX", prefix);
	assert_non_null(mkdtemp(s->dir));
	*state = s;
	return 0;
}

static inline int scratch_teardown(void **state)
{
	struct scratch *s = *state;
	nftw(s->dir, scratch_remove_one, 32, FTW_DEPTH | FTW_PHYS);
	free(s);
	return 0;
}

/* "DIR/rel" in one of four rotating buffers, so a call may take a few. */
static inline const char *at(const struct scratch *s, const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", s->dir, rel);
	return b;
}

/* Creates or replaces path with text and exactly mode (no umask). */
static inline void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

#endif
