/* libFuzzer target for the layer applier (src/lib/layer*.c).
 *
 * Each run applies one layer onto a fresh root that already holds a file,
 * a directory and three symlinks out of it (out -> ../outside, abs -> the
 * absolute path of outside, up -> ..), and then traps unless everything
 * beside the root is as it was: the scratch directory holds only root/ and
 * outside/, and outside/ only its canary, with one link and its bytes.
 *
 * The input is the layer itself when it looks like one (a ustar magic at
 * offset 257, or gzip or zstd magic), so tar-shaped corpora work as they
 * are. Anything else is read as a short program of entries (type, name
 * and link target picked from path pieces that matter here: `..`, `.wh.`,
 * the planted symlinks) written into a tar with libarchive, so that a
 * short run already reaches whiteouts, links and escapes instead of
 * spending itself on tar checksums.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_layer.c \
 *     src/lib/layer*.c src/lib/error.c -larchive -o /tmp/fuzz_layer
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "husk/layer.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 48
#define TAR_CAP     (1 << 20)

static char base[64], root[128], outside[128], canary[160];

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw);

/* libFuzzer leaves through exit() when its time is up. */
static void remove_base(void)
{
	nftw(base, remove_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory, made once per process and removed at exit. */
static void init(void)
{
	snprintf(base, sizeof(base), "/tmp/husk-fuzz-layer.XXXXXX");
	CHECK(mkdtemp(base));
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	snprintf(canary, sizeof(canary), "%s/canary", outside);
	CHECK(mkdir(outside, 0755) == 0);
	int fd = open(canary, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0 && write(fd, "canary", 6) == 6);
	close(fd);
	atexit(remove_base);
}

static void plant(void)
{
	char path[256];
	CHECK(mkdir(root, 0755) == 0);
	snprintf(path, sizeof(path), "%s/out", root);
	CHECK(symlink("../outside", path) == 0);
	snprintf(path, sizeof(path), "%s/abs", root);
	CHECK(symlink(outside, path) == 0);
	snprintf(path, sizeof(path), "%s/up", root);
	CHECK(symlink("..", path) == 0);
	snprintf(path, sizeof(path), "%s/d", root);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/d/f", root);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	close(fd);
}

static int count_names(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void check_outside(void)
{
	struct stat st;
	CHECK(count_names(base) == 2);
	CHECK(count_names(outside) == 1);
	CHECK(lstat(canary, &st) == 0);
	CHECK(S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == 6);
	CHECK((st.st_mode & 07777) == 0644);
}

/* Directories u+rwx first, so that a layer's 0000 directory cannot stop
 * the removal when the fuzzer runs unprivileged. */
static int open_up(const char *path, const struct stat *st, int flag,
                   struct FTW *ftw)
{
	if (flag == FTW_D || flag == FTW_DNR)
		chmod(path, 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
	return remove(path);
}

static void clean(void)
{
	nftw(root, open_up, 32, FTW_PHYS);
	CHECK(nftw(root, remove_one, 32, FTW_DEPTH | FTW_PHYS) == 0);
}

/* --- the entry program ---------------------------------------------- */

static const char *const pieces[] = {
    "a",     "b",      "..",      ".",      "",      "out",   "abs",
    "up",    "d",      "f",       "canary", ".wh.a", ".wh.d", ".wh..wh..opq",
    ".wh..", ".wh...", "outside",
};
#define NPIECES (sizeof(pieces) / sizeof(pieces[0]))

struct reader {
	const uint8_t *p;
	size_t left;
};

static unsigned next(struct reader *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

/* A name of one to four pieces, absolute when the byte says so. */
static void make_name(struct reader *r, char *out, size_t cap)
{
	unsigned b = next(r);
	size_t len = 0;
	out[0] = '\0';
	if (b & 0x80)
		len += (size_t)snprintf(out, cap, "/");
	for (unsigned i = 0; i <= (b & 3) && len < cap; i++) {
		const char *piece = pieces[next(r) % NPIECES];
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		                        i ? "/" : "", piece);
	}
}

/* Writes the entries the input describes as a tar in buf. */
static size_t program_to_tar(const uint8_t *data, size_t size, char *buf)
{
	struct reader r = {data, size};
	size_t used = 0;
	struct archive *a = archive_write_new();
	CHECK(a);
	archive_write_set_format_pax_restricted(a);
	CHECK(archive_write_open_memory(a, buf, TAR_CAP, &used) == ARCHIVE_OK);
	for (int i = 0; i < MAX_ENTRIES && r.left; i++) {
		static const mode_t types[] = {AE_IFREG, AE_IFDIR, AE_IFLNK,
		                               AE_IFREG, AE_IFIFO, AE_IFCHR};
		unsigned t = next(&r);
		char name[128], target[128];
		make_name(&r, name, sizeof(name));
		make_name(&r, target, sizeof(target));
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, types[t % 6]);
		unsigned hi = next(&r), lo = next(&r);
		archive_entry_set_perm(e, (hi << 4 | lo) & 07777);
		archive_entry_set_uid(e, t >> 7);
		archive_entry_set_mtime(e, 1600000000, 0);
		if (t % 6 == 2)
			archive_entry_set_symlink(e, target);
		if (t % 6 == 3)
			archive_entry_set_hardlink(e, target);
		if (t % 6 == 5)
			archive_entry_set_rdev(e, makedev(1, 3));
		unsigned len = t % 6 == 0 ? next(&r) % 16 : 0;
		archive_entry_set_size(e, len);
		if (archive_write_header(a, e) == ARCHIVE_OK && len)
			archive_write_data(a, "0123456789abcdef", len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

static int looks_like_layer(const uint8_t *d, size_t n)
{
	return (n >= 262 && !memcmp(d + 257, "ustar", 5)) ||
	       (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) ||
	       (n >= 4 && !memcmp(d, "\x28\xb5\x2f\xfd", 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *tar;
	if (!tar) {
		init();
		CHECK((tar = malloc(TAR_CAP)));
	}
	const void *layer = data;
	size_t len = size;
	if (!looks_like_layer(data, size)) {
		len = program_to_tar(data, size, tar);
		layer = tar;
	}

	plant();
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(rootfd >= 0);
	struct husk_layer_stats st;
	struct husk_error err;
	int rc = husk_layer_apply_memory(rootfd, layer, len, 0, &st, &err);
	CHECK(rc <= 0);
	CHECK(rc == 0 || (err.code == -rc && err.msg[0]));
	close(rootfd);
	check_outside();
	clean();
	return 0;
}
