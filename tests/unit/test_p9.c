/* virtio-9p and its 9P2000.L server against a fake guest: requests are
 * built as the Linux client builds them, put in guest memory, offered on
 * the queue as one chain (message readable, reply writable), and the
 * replies read back; the shared directory is a scratch directory checked
 * from the host side. Besides round trips of every request, the
 * confinement cases: "..", symlinks to outside, a file swapped for a
 * symlink between walk and open, a directory moved out of the share, a
 * read-only share, and malformed messages. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/p9/p9_proto.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/p9.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"
#include "scratch.h"

#define MEM_SIZE 0x200000ULL
#define QNUM     64
#define DESC     0x0000ULL
#define AVAIL    0x1000ULL
#define USED     0x2000ULL
#define REQ      0x10000ULL  /* up to 0xf0000 bytes of request */
#define RESP     0x100000ULL /* up to 1 MiB of reply */
#define RESP_CAP (P9_MAX_MSIZE)

#define WR VIRTQ_DESC_F_WRITE

#define ROOT 1 /* the fid the tests attach */

struct fx {
	struct scratch *sc;
	char share[128];
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	unsigned used_irqs, config_irqs;
	uint16_t avail_idx, next_desc;
	/* The message being built, and the last reply. */
	uint8_t msg[0x20000];
	size_t mlen;
	uint8_t r[RESP_CAP];
	uint32_t rlen;
	size_t roff;
};

/* ---- the fake transport and driver ---- */

static void count_irq(struct virtio_dev *d, uint32_t reason)
{
	struct fx *f = d->transport;
	drv_count_irq(reason, &f->used_irqs, &f->config_irqs);
}

static void open_device(struct fx *f, bool ro)
{
	struct virtio_p9_config_opts o = {
	    .tag = "share0", .path = f->share, .read_only = ro};
	struct husk_error e = {0};
	if (virtio_p9_init(&f->d, &f->m, &o, &e) != 0)
		fail_msg("virtio_p9_init: %s", e.msg);
	memset(f->buf, 0, 0x3000);
	f->avail_idx = f->next_desc = 0;
	drv_go_live(&f->d, f, count_irq);
	drv_queue_layout(&f->d.queues[0], QNUM, DESC, AVAIL, USED);
	drv_queue_ready(&f->m, &f->d.queues[0]);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	scratch_setup((void **)&f->sc, "husk-p9");
	snprintf(f->share, sizeof(f->share), "%s/share", f->sc->dir);
	assert_int_equal(mkdir(f->share, 0755), 0);
	assert_int_equal(drv_mem_new(&f->m, &f->buf, MEM_SIZE), 0);
	vmm_log_set_quiet(true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_p9_destroy(&f->d);
	pthread_mutex_destroy(&f->d.lock);
	free(f->buf);
	void *sc = f->sc;
	scratch_teardown(&sc);
	free(f);
	return 0;
}

/* Offers [req readable][wcap writable] and kicks; returns the used
 * length and copies the reply into f->r. */
static uint32_t raw_call(struct fx *f, const void *req, uint32_t len,
                         uint32_t wcap)
{
	struct drv_seg s[2];
	unsigned n = 0;
	if (len) {
		drv_put(&f->m, REQ, req, len);
		s[n++] = (struct drv_seg){REQ, len, 0};
	}
	if (wcap)
		s[n++] = (struct drv_seg){RESP, wcap, WR};
	uint16_t before = drv_used_idx(&f->m, USED);
	uint16_t head = drv_offer_chain(&f->m, DESC, AVAIL, QNUM, &f->avail_idx,
	                                &f->next_desc, s, n);
	drv_kick(&f->d, 0);
	assert_int_equal(drv_used_idx(&f->m, USED), (uint16_t)(before + 1));
	assert_int_equal(drv_used_id(&f->m, USED, QNUM, before), head);
	assert_true(virtio_dev_live(&f->d));
	uint32_t used = drv_used_len(&f->m, USED, QNUM, before);
	assert_true(used <= wcap);
	f->rlen = used;
	f->roff = 0;
	if (used)
		drv_get(&f->m, RESP, f->r, used);
	return used;
}

/* ---- building requests ---- */

static void m8(struct fx *f, uint8_t v)
{
	f->msg[f->mlen++] = v;
}

static void m16(struct fx *f, uint16_t v)
{
	m8(f, (uint8_t)v);
	m8(f, (uint8_t)(v >> 8));
}

static void m32(struct fx *f, uint32_t v)
{
	m16(f, (uint16_t)v);
	m16(f, (uint16_t)(v >> 16));
}

static void m64(struct fx *f, uint64_t v)
{
	m32(f, (uint32_t)v);
	m32(f, (uint32_t)(v >> 32));
}

static void mstr(struct fx *f, const char *s)
{
	size_t n = strlen(s);
	m16(f, (uint16_t)n);
	memcpy(f->msg + f->mlen, s, n);
	f->mlen += n;
}

static void begin(struct fx *f, uint8_t type)
{
	f->mlen = 0;
	m32(f, 0);
	m8(f, type);
	m16(f, 0x4242);
}

/* Sends the built message (size patched); the reply's type. */
static uint8_t send(struct fx *f)
{
	uint32_t n = htole32((uint32_t)f->mlen);
	memcpy(f->msg, &n, 4);
	uint32_t used = raw_call(f, f->msg, (uint32_t)f->mlen, RESP_CAP);
	assert_true(used >= P9_HDR_SIZE);
	uint32_t size;
	memcpy(&size, f->r, 4);
	assert_int_equal(le32toh(size), used);
	assert_int_equal(f->r[5] | f->r[6] << 8, 0x4242);
	f->roff = P9_HDR_SIZE;
	return f->r[4];
}

static uint64_t rle(struct fx *f, unsigned n)
{
	uint64_t v = 0;
	assert_true(f->roff + n <= f->rlen);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)f->r[f->roff + i] << (8 * i);
	f->roff += n;
	return v;
}

static uint32_t r32(struct fx *f)
{
	return (uint32_t)rle(f, 4);
}

static uint64_t r64(struct fx *f)
{
	return rle(f, 8);
}

/* A string of the reply into buf (cap bytes). */
static void rstr(struct fx *f, char *buf, size_t cap)
{
	uint16_t n = (uint16_t)rle(f, 2);
	assert_true(n < cap && f->roff + n <= f->rlen);
	memcpy(buf, f->r + f->roff, n);
	buf[n] = '\0';
	f->roff += n;
}

/* 0 for the reply type expected for req, else the Rlerror errno. */
static int result(struct fx *f, uint8_t req)
{
	uint8_t t = send(f);
	if (t == P9_RLERROR)
		return (int)r32(f);
	assert_int_equal(t, req + 1);
	return 0;
}

/* ---- requests ---- */

static int version(struct fx *f, uint32_t msize, const char *v)
{
	begin(f, P9_TVERSION);
	m32(f, msize);
	mstr(f, v);
	return result(f, P9_TVERSION);
}

static int attach(struct fx *f, uint32_t fid)
{
	begin(f, P9_TATTACH);
	m32(f, fid);
	m32(f, P9_NOFID);
	mstr(f, "root");
	mstr(f, "");
	m32(f, 0);
	return result(f, P9_TATTACH);
}

static void start(struct fx *f, bool ro)
{
	open_device(f, ro);
	assert_int_equal(version(f, 1u << 20, "9P2000.L"), 0);
	assert_int_equal(r32(f), P9_MAX_MSIZE);
	assert_int_equal(attach(f, ROOT), 0);
}

/* Twalk of n names; 0 with *nwqid, or the errno. */
static int walkv(struct fx *f, uint32_t fid, uint32_t newfid, unsigned *nwqid,
                 unsigned n, const char *const *names)
{
	begin(f, P9_TWALK);
	m32(f, fid);
	m32(f, newfid);
	m16(f, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		mstr(f, names[i]);
	int rc = result(f, P9_TWALK);
	if (rc == 0 && nwqid)
		*nwqid = (unsigned)rle(f, 2);
	return rc;
}

/* A walk that must go all the way. */
static int walk(struct fx *f, uint32_t fid, uint32_t newfid, const char *name)
{
	unsigned nq = 0;
	const char *names[1] = {name};
	int rc = walkv(f, fid, newfid, &nq, name ? 1 : 0, names);
	if (rc == 0 && name && nq != 1)
		return ENOENT;
	return rc;
}

static int clunk(struct fx *f, uint32_t fid)
{
	begin(f, P9_TCLUNK);
	m32(f, fid);
	return result(f, P9_TCLUNK);
}

static int lopen(struct fx *f, uint32_t fid, uint32_t flags)
{
	begin(f, P9_TLOPEN);
	m32(f, fid);
	m32(f, flags);
	return result(f, P9_TLOPEN);
}

static int lcreate(struct fx *f, uint32_t fid, const char *name, uint32_t flags,
                   uint32_t mode)
{
	begin(f, P9_TLCREATE);
	m32(f, fid);
	mstr(f, name);
	m32(f, flags);
	m32(f, mode);
	m32(f, 0);
	return result(f, P9_TLCREATE);
}

static int pwrite9(struct fx *f, uint32_t fid, uint64_t off, const char *s)
{
	begin(f, P9_TWRITE);
	m32(f, fid);
	m64(f, off);
	m32(f, (uint32_t)strlen(s));
	memcpy(f->msg + f->mlen, s, strlen(s));
	f->mlen += strlen(s);
	int rc = result(f, P9_TWRITE);
	if (rc == 0)
		assert_int_equal(r32(f), strlen(s));
	return rc;
}

/* Treads count bytes at off into buf as a string; the errno or 0. */
static int pread9(struct fx *f, uint32_t fid, uint64_t off, uint32_t count,
                  char *buf, size_t cap)
{
	begin(f, P9_TREAD);
	m32(f, fid);
	m64(f, off);
	m32(f, count);
	int rc = result(f, P9_TREAD);
	if (rc)
		return rc;
	uint32_t n = r32(f);
	assert_true(n < cap && f->roff + n <= f->rlen);
	memcpy(buf, f->r + f->roff, n);
	buf[n] = '\0';
	return 0;
}

static int mkdir9(struct fx *f, uint32_t dfid, const char *name)
{
	begin(f, P9_TMKDIR);
	m32(f, dfid);
	mstr(f, name);
	m32(f, 0750);
	m32(f, 0);
	return result(f, P9_TMKDIR);
}

static int unlinkat9(struct fx *f, uint32_t dfid, const char *name,
                     uint32_t flags)
{
	begin(f, P9_TUNLINKAT);
	m32(f, dfid);
	mstr(f, name);
	m32(f, flags);
	return result(f, P9_TUNLINKAT);
}

static int renameat9(struct fx *f, uint32_t od, const char *on, uint32_t nd,
                     const char *nn)
{
	begin(f, P9_TRENAMEAT);
	m32(f, od);
	mstr(f, on);
	m32(f, nd);
	mstr(f, nn);
	return result(f, P9_TRENAMEAT);
}

static int readlink9(struct fx *f, uint32_t fid, char *buf, size_t cap)
{
	begin(f, P9_TREADLINK);
	m32(f, fid);
	int rc = result(f, P9_TREADLINK);
	if (rc == 0)
		rstr(f, buf, cap);
	return rc;
}

static int getattr9(struct fx *f, uint32_t fid, struct stat *st)
{
	begin(f, P9_TGETATTR);
	m32(f, fid);
	m64(f, P9_GETATTR_BASIC);
	int rc = result(f, P9_TGETATTR);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	assert_int_equal(r64(f), P9_GETATTR_BASIC);
	f->roff += P9_QID_SIZE;
	st->st_mode = r32(f);
	st->st_uid = r32(f);
	st->st_gid = r32(f);
	st->st_nlink = r64(f);
	st->st_rdev = r64(f);
	st->st_size = (off_t)r64(f);
	return 0;
}

static int setattr9(struct fx *f, uint32_t fid, uint32_t valid, uint32_t mode,
                    uint64_t size, uint64_t mtime)
{
	begin(f, P9_TSETATTR);
	m32(f, fid);
	m32(f, valid);
	m32(f, mode);
	m32(f, 0);
	m32(f, 0);
	m64(f, size);
	m64(f, 0);
	m64(f, 0);
	m64(f, mtime);
	m64(f, 0);
	return result(f, P9_TSETATTR);
}

static void host_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, cap - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static const char *sp(struct fx *f, const char *rel)
{
	static char b[4][512];
	static int i;
	char *p = b[i++ % 4];
	snprintf(p, sizeof(b[0]), "%s/%s", f->share, rel);
	return p;
}

/* ---- round trips ---- */

static void test_config_and_version(void **state)
{
	struct fx *f = *state;
	open_device(f, false);
	assert_int_equal(f->d.ops->device_id, 9);
	assert_true(f->d.device_features & (1ULL << VIRTIO_9P_F_MOUNT_TAG));
	uint8_t cfg[8];
	f->d.ops->config_read(&f->d, 0, cfg, 8);
	assert_int_equal(cfg[0] | cfg[1] << 8, 6);
	assert_memory_equal(cfg + 2, "share0", 6);

	/* Nothing before Tversion. */
	assert_int_equal(attach(f, ROOT), EPROTO);
	/* Another dialect: "unknown", no session. */
	assert_int_equal(version(f, 8192, "9P2000.u"), 0);
	char v[32];
	r32(f);
	rstr(f, v, sizeof(v));
	assert_string_equal(v, "unknown");
	assert_int_equal(attach(f, ROOT), EPROTO);
	/* Too small an msize. */
	assert_int_equal(version(f, 100, "9P2000.L"), EINVAL);
	/* msize capped. */
	assert_int_equal(version(f, 1u << 30, "9P2000.L"), 0);
	assert_int_equal(r32(f), P9_MAX_MSIZE);
	rstr(f, v, sizeof(v));
	assert_string_equal(v, "9P2000.L");
	assert_int_equal(attach(f, ROOT), 0);
	assert_int_equal(attach(f, ROOT), EBADF); /* fid in use */
	/* A new Tversion forgets every fid. */
	assert_int_equal(version(f, 8192, "9P2000.L"), 0);
	assert_int_equal(clunk(f, ROOT), EBADF);
}

static void test_read_write_create(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkdir(sp(f, "dir"), 0755), 0);
	write_file(sp(f, "dir/file"), "host text", 0644);
	start(f, false);

	const char *path[2] = {"dir", "file"};
	unsigned nq;
	assert_int_equal(walkv(f, ROOT, 2, &nq, 2, path), 0);
	assert_int_equal(nq, 2);
	assert_int_equal(lopen(f, 2, O_RDONLY), 0);
	char buf[256];
	assert_int_equal(pread9(f, 2, 5, 100, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "text");
	/* Opened read-only: writing fails. */
	assert_int_equal(pwrite9(f, 2, 0, "x"), EBADF);
	assert_int_equal(clunk(f, 2), 0);
	assert_int_equal(clunk(f, 2), EBADF);

	/* Tlcreate: the directory fid becomes the open new file. */
	assert_int_equal(walk(f, ROOT, 3, "dir"), 0);
	assert_int_equal(lcreate(f, 3, "new", O_RDWR, 06755), 0);
	assert_int_equal(pwrite9(f, 3, 0, "hello from guest"), 0);
	assert_int_equal(pread9(f, 3, 6, 4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "from");
	host_read(sp(f, "dir/new"), buf, sizeof(buf));
	assert_string_equal(buf, "hello from guest");
	struct stat st;
	assert_int_equal(stat(sp(f, "dir/new"), &st), 0);
	/* Exact mode past the umask, less set-uid and set-gid. */
	assert_int_equal(st.st_mode & 07777, 0755);
	/* Existing name with O_EXCL. */
	assert_int_equal(walk(f, ROOT, 4, "dir"), 0);
	assert_int_equal(lcreate(f, 4, "new", O_RDWR | O_EXCL, 0644), EEXIST);

	/* getattr and setattr. */
	assert_int_equal(getattr9(f, 3, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 16);
	assert_int_equal(setattr9(f, 3,
	                          P9_SETATTR_SIZE | P9_SETATTR_MODE |
	                              P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET,
	                          04600, 5, 1000000),
	                 0);
	assert_int_equal(stat(sp(f, "dir/new"), &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);

	/* fsync, statfs, lock, getlock, xattrwalk. */
	begin(f, P9_TFSYNC);
	m32(f, 3);
	m32(f, 0);
	assert_int_equal(result(f, P9_TFSYNC), 0);
	begin(f, P9_TSTATFS);
	m32(f, ROOT);
	assert_int_equal(result(f, P9_TSTATFS), 0);
	begin(f, P9_TLOCK);
	m32(f, 3);
	m8(f, 1);
	m32(f, 0);
	m64(f, 0);
	m64(f, 0);
	m32(f, 1);
	mstr(f, "guest");
	assert_int_equal(result(f, P9_TLOCK), 0);
	assert_int_equal(f->r[f->roff], P9_LOCK_SUCCESS);
	begin(f, P9_TGETLOCK);
	m32(f, 3);
	m8(f, 1);
	m64(f, 0);
	m64(f, 10);
	m32(f, 1);
	mstr(f, "guest");
	assert_int_equal(result(f, P9_TGETLOCK), 0);
	assert_int_equal(f->r[f->roff], P9_LOCK_TYPE_UNLCK);
	begin(f, P9_TXATTRWALK);
	m32(f, 3);
	m32(f, 9);
	mstr(f, "user.x");
	assert_int_equal(result(f, P9_TXATTRWALK), EOPNOTSUPP);
	begin(f, P9_TFLUSH);
	m16(f, 7);
	assert_int_equal(result(f, P9_TFLUSH), 0);
}

static void test_readdir(void **state)
{
	struct fx *f = *state;
	char name[64];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "file-with-a-longish-name-%02d",
		         i);
		write_file(sp(f, name), "", 0644);
	}
	start(f, false);
	assert_int_equal(walk(f, ROOT, 2, NULL), 0); /* clone */
	assert_int_equal(lopen(f, 2, O_RDONLY), 0);
	uint64_t off = 0;
	unsigned seen = 0, rounds = 0, dots = 0;
	bool found[40] = {0};
	for (;;) {
		begin(f, P9_TREADDIR);
		m32(f, 2);
		m64(f, off);
		m32(f, 300); /* a few entries per reply */
		assert_int_equal(result(f, P9_TREADDIR), 0);
		uint32_t count = r32(f);
		if (count == 0)
			break;
		size_t end = f->roff + count;
		assert_true(end <= f->rlen);
		while (f->roff < end) {
			f->roff += P9_QID_SIZE;
			off = r64(f);
			f->roff += 1;
			rstr(f, name, sizeof(name));
			int i;
			if (sscanf(name, "file-with-a-longish-name-%d", &i) ==
			    1) {
				assert_false(found[i]);
				found[i] = true;
				seen++;
			} else {
				dots++;
			}
		}
		assert_true(++rounds < 100);
	}
	assert_int_equal(seen, 40);
	assert_int_equal(dots, 2); /* "." and ".." */
	assert_true(rounds > 3);
	/* Not open, or not a directory. */
	assert_int_equal(walk(f, ROOT, 3, NULL), 0);
	begin(f, P9_TREADDIR);
	m32(f, 3);
	m64(f, 0);
	m32(f, 300);
	assert_int_equal(result(f, P9_TREADDIR), EBADF);
}

static void test_dirs_rename_unlink(void **state)
{
	struct fx *f = *state;
	start(f, false);
	assert_int_equal(mkdir9(f, ROOT, "d"), 0);
	struct stat st;
	assert_int_equal(stat(sp(f, "d"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(mkdir9(f, ROOT, "d"), EEXIST);

	/* A fid on d/f keeps working after its directory is renamed. */
	assert_int_equal(walk(f, ROOT, 2, "d"), 0);
	assert_int_equal(lcreate(f, 2, "f", O_WRONLY, 0644), 0);
	assert_int_equal(pwrite9(f, 2, 0, "one"), 0);
	assert_int_equal(clunk(f, 2), 0);
	const char *df[2] = {"d", "f"};
	assert_int_equal(walkv(f, ROOT, 3, NULL, 2, df), 0);
	assert_int_equal(renameat9(f, ROOT, "d", ROOT, "e"), 0);
	assert_int_equal(access(sp(f, "e/f"), F_OK), 0);
	assert_int_equal(lopen(f, 3, O_RDWR), 0);
	assert_int_equal(pwrite9(f, 3, 3, "two"), 0);
	char buf[64];
	host_read(sp(f, "e/f"), buf, sizeof(buf));
	assert_string_equal(buf, "onetwo");
	assert_int_equal(clunk(f, 3), 0);

	/* Trename: the fid follows its file to the new name. */
	const char *ef[2] = {"e", "f"};
	assert_int_equal(walkv(f, ROOT, 4, NULL, 2, ef), 0);
	begin(f, P9_TRENAME);
	m32(f, 4);
	m32(f, ROOT);
	mstr(f, "g");
	assert_int_equal(result(f, P9_TRENAME), 0);
	assert_int_equal(access(sp(f, "g"), F_OK), 0);
	assert_int_equal(lopen(f, 4, O_RDONLY), 0);
	assert_int_equal(pread9(f, 4, 0, 10, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "onetwo");

	/* Tlink, then Tunlinkat and Tremove. */
	begin(f, P9_TLINK);
	m32(f, ROOT);
	m32(f, 4);
	mstr(f, "h");
	assert_int_equal(result(f, P9_TLINK), 0);
	assert_int_equal(stat(sp(f, "h"), &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(unlinkat9(f, ROOT, "h", 0), 0);
	assert_int_equal(access(sp(f, "h"), F_OK), -1);
	assert_int_equal(unlinkat9(f, ROOT, "e", 0), EISDIR);
	assert_int_equal(unlinkat9(f, ROOT, "e", P9_AT_REMOVEDIR), 0);
	assert_int_equal(access(sp(f, "e"), F_OK), -1);
	begin(f, P9_TREMOVE);
	m32(f, 4);
	assert_int_equal(result(f, P9_TREMOVE), 0);
	assert_int_equal(access(sp(f, "g"), F_OK), -1);
	assert_int_equal(clunk(f, 4), EBADF); /* Tremove clunked it */
	/* The root cannot be removed, and the fid goes anyway. */
	assert_int_equal(walk(f, ROOT, 5, NULL), 0);
	begin(f, P9_TREMOVE);
	m32(f, 5);
	assert_int_equal(result(f, P9_TREMOVE), EBUSY);
	assert_int_equal(clunk(f, 5), EBADF);

	/* mknod: FIFOs yes, devices no. */
	begin(f, P9_TMKNOD);
	m32(f, ROOT);
	mstr(f, "fifo");
	m32(f, S_IFIFO | 0644);
	m32(f, 0);
	m32(f, 0);
	m32(f, 0);
	assert_int_equal(result(f, P9_TMKNOD), 0);
	assert_int_equal(stat(sp(f, "fifo"), &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	begin(f, P9_TMKNOD);
	m32(f, ROOT);
	mstr(f, "null");
	m32(f, S_IFCHR | 0666);
	m32(f, 1);
	m32(f, 3);
	m32(f, 0);
	assert_int_equal(result(f, P9_TMKNOD), EPERM);
	assert_int_equal(access(sp(f, "null"), F_OK), -1);
	/* A FIFO is never opened on the host. */
	assert_int_equal(walk(f, ROOT, 6, "fifo"), 0);
	assert_int_equal(lopen(f, 6, O_RDONLY), ENXIO);
}

/* ---- confinement ---- */

static void test_symlinks_not_followed(void **state)
{
	struct fx *f = *state;
	assert_int_equal(symlink("/etc", sp(f, "etc")), 0);
	assert_int_equal(symlink("../../..", sp(f, "up")), 0);
	write_file(at(f->sc, "secret"), "outside", 0644);
	assert_int_equal(symlink("../secret", sp(f, "sec")), 0);
	start(f, false);

	/* Walking through a symlink stops at the link. */
	const char *p1[2] = {"etc", "passwd"};
	unsigned nq = 9;
	assert_int_equal(walkv(f, ROOT, 2, &nq, 2, p1), 0);
	assert_int_equal(nq, 1);
	assert_int_equal(clunk(f, 2), EBADF); /* partial walk: no newfid */
	const char *p2[2] = {"up", "etc"};
	assert_int_equal(walkv(f, ROOT, 2, &nq, 2, p2), 0);
	assert_int_equal(nq, 1);

	/* The link itself: readlink gives its text, open refuses it. */
	char buf[256];
	assert_int_equal(walk(f, ROOT, 3, "etc"), 0);
	assert_int_equal(readlink9(f, 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/etc");
	assert_int_equal(lopen(f, 3, O_RDONLY), ELOOP);
	struct stat st;
	assert_int_equal(getattr9(f, 3, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(walk(f, ROOT, 4, "sec"), 0);
	assert_int_equal(lopen(f, 4, O_RDONLY), ELOOP);
	assert_int_equal(readlink9(f, ROOT, buf, sizeof(buf)), EINVAL);
	/* Creating through a symlink does not follow it either. */
	assert_int_equal(lcreate(f, 3, "x", O_RDWR, 0644), ENOTDIR);
	assert_int_equal(lcreate(f, ROOT, "sec", O_RDWR, 0644), ELOOP);
	host_read(at(f->sc, "secret"), buf, sizeof(buf));
	assert_string_equal(buf, "outside");

	/* Tsymlink stores text; nothing is resolved. */
	begin(f, P9_TSYMLINK);
	m32(f, ROOT);
	mstr(f, "mine");
	mstr(f, "../../../etc/shadow");
	m32(f, 0);
	assert_int_equal(result(f, P9_TSYMLINK), 0);
	ssize_t n = readlink(sp(f, "mine"), buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "../../../etc/shadow");
	/* setattr on a symlink's mode is refused, not followed. */
	assert_int_equal(walk(f, ROOT, 5, "sec"), 0);
	assert_int_equal(setattr9(f, 5, P9_SETATTR_MODE, 0777, 0, 0),
	                 EOPNOTSUPP);
	assert_int_equal(stat(at(f->sc, "secret"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* Truncating through it neither. */
	assert_int_equal(setattr9(f, 5, P9_SETATTR_SIZE, 0, 0, 0), ELOOP);
	host_read(at(f->sc, "secret"), buf, sizeof(buf));
	assert_string_equal(buf, "outside");
}

static void test_dotdot_and_bad_names(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkdir(sp(f, "sub"), 0755), 0);
	start(f, false);
	assert_int_equal(walk(f, ROOT, 2, ".."), EPERM);
	assert_int_equal(walk(f, ROOT, 2, "."), EPERM);
	assert_int_equal(walk(f, ROOT, 2, ""), EINVAL);
	assert_int_equal(walk(f, ROOT, 2, "sub/.."), EINVAL);
	assert_int_equal(walk(f, ROOT, 2, "/etc"), EINVAL);
	/* ".." after a good name: the walk stops there. */
	const char *p[3] = {"sub", "..", ".."};
	unsigned nq = 9;
	assert_int_equal(walkv(f, ROOT, 2, &nq, 3, p), 0);
	assert_int_equal(nq, 1);
	assert_int_equal(clunk(f, 2), EBADF);
	/* Names with '/' or ".." are refused by every request. */
	assert_int_equal(mkdir9(f, ROOT, "../evil"), EINVAL);
	assert_int_equal(mkdir9(f, ROOT, ".."), EPERM);
	assert_int_equal(lcreate(f, ROOT, "../evil", O_RDWR, 0644), EINVAL);
	assert_int_equal(renameat9(f, ROOT, "sub", ROOT, "../moved"), EINVAL);
	assert_int_equal(unlinkat9(f, ROOT, "..", P9_AT_REMOVEDIR), EPERM);
	assert_int_equal(access(at(f->sc, "evil"), F_OK), -1);
	assert_int_equal(access(sp(f, "sub"), F_OK), 0);
	/* A NUL inside a name. */
	begin(f, P9_TMKDIR);
	m32(f, ROOT);
	m16(f, 3);
	m8(f, 'a');
	m8(f, 0);
	m8(f, 'b');
	m32(f, 0755);
	m32(f, 0);
	assert_int_equal(result(f, P9_TMKDIR), EINVAL);
}

static void test_swapped_for_symlink(void **state)
{
	struct fx *f = *state;
	write_file(sp(f, "victim"), "inside", 0644);
	write_file(at(f->sc, "secret"), "outside", 0644);
	start(f, false);
	assert_int_equal(walk(f, ROOT, 2, "victim"), 0);
	/* Between walk and open, the host (or another guest process
	 * through another path) replaces the file with a symlink. */
	assert_int_equal(unlink(sp(f, "victim")), 0);
	assert_int_equal(symlink("../secret", sp(f, "victim")), 0);
	assert_int_equal(lopen(f, 2, O_RDWR | O_TRUNC), ELOOP);
	char buf[64];
	host_read(at(f->sc, "secret"), buf, sizeof(buf));
	assert_string_equal(buf, "outside");
	/* Replaced by another regular file: the fid is stale, not
	 * silently retargeted. */
	assert_int_equal(walk(f, ROOT, 3, "victim"), 0); /* the symlink */
	assert_int_equal(unlink(sp(f, "victim")), 0);
	write_file(sp(f, "victim"), "other", 0644);
	assert_int_equal(walk(f, ROOT, 4, "victim"), 0);
	assert_int_equal(unlink(sp(f, "victim")), 0);
	write_file(sp(f, "victim"), "third", 0644);
	assert_int_equal(lopen(f, 4, O_RDONLY), ESTALE);
	assert_int_equal(setattr9(f, 4, P9_SETATTR_SIZE, 0, 0, 0), ESTALE);
	host_read(sp(f, "victim"), buf, sizeof(buf));
	assert_string_equal(buf, "third");
}

static void test_dir_moved_out(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkdir(sp(f, "d"), 0755), 0);
	write_file(at(f->sc, "secret"), "outside", 0644);
	start(f, false);
	assert_int_equal(walk(f, ROOT, 2, "d"), 0);
	/* The host moves d out of the share, next to "secret". */
	assert_int_equal(rename(sp(f, "d"), at(f->sc, "moved")), 0);
	assert_int_equal(walk(f, 2, 3, ".."), EPERM);
	assert_int_equal(walk(f, 2, 3, "secret"), ENOENT);
	const char *p[2] = {"..", "secret"};
	assert_int_equal(walkv(f, 2, 3, NULL, 2, p), EPERM);
	assert_int_equal(lcreate(f, 2, "../secret", O_RDWR, 0644), EINVAL);
	char buf[64];
	host_read(at(f->sc, "secret"), buf, sizeof(buf));
	assert_string_equal(buf, "outside");
	/* A guest rename of a directory keeps fids inside the share. */
	assert_int_equal(mkdir9(f, ROOT, "a"), 0);
	assert_int_equal(mkdir9(f, ROOT, "b"), 0);
	assert_int_equal(walk(f, ROOT, 4, "a"), 0);
	assert_int_equal(renameat9(f, ROOT, "a", ROOT, "c"), 0);
	assert_int_equal(renameat9(f, ROOT, "c", 4, "inner"), EINVAL);
	assert_int_equal(lcreate(f, 4, "z", O_RDWR, 0644), 0);
	assert_int_equal(access(sp(f, "c/z"), F_OK), 0);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	write_file(sp(f, "file"), "ro", 0644);
	assert_int_equal(mkdir(sp(f, "dir"), 0755), 0);
	start(f, true);
	assert_int_equal(walk(f, ROOT, 2, "file"), 0);
	assert_int_equal(lopen(f, 2, O_WRONLY), EROFS);
	assert_int_equal(lopen(f, 2, O_RDWR), EROFS);
	assert_int_equal(lopen(f, 2, O_RDONLY | O_TRUNC), EROFS);
	assert_int_equal(lopen(f, 2, O_RDONLY), 0);
	char buf[16];
	assert_int_equal(pread9(f, 2, 0, 16, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "ro");
	assert_int_equal(pwrite9(f, 2, 0, "x"), EROFS);
	assert_int_equal(lcreate(f, ROOT, "new", O_RDWR, 0644), EROFS);
	assert_int_equal(mkdir9(f, ROOT, "new"), EROFS);
	assert_int_equal(unlinkat9(f, ROOT, "file", 0), EROFS);
	assert_int_equal(renameat9(f, ROOT, "file", ROOT, "f2"), EROFS);
	assert_int_equal(setattr9(f, 2, P9_SETATTR_SIZE, 0, 0, 0), EROFS);
	begin(f, P9_TSYMLINK);
	m32(f, ROOT);
	mstr(f, "l");
	mstr(f, "x");
	m32(f, 0);
	assert_int_equal(result(f, P9_TSYMLINK), EROFS);
	begin(f, P9_TREMOVE);
	m32(f, 2);
	assert_int_equal(result(f, P9_TREMOVE), EROFS);
	assert_int_equal(clunk(f, 2), EBADF);
	assert_int_equal(access(sp(f, "file"), F_OK), 0);
	assert_int_equal(access(sp(f, "new"), F_OK), -1);
	host_read(sp(f, "file"), buf, sizeof(buf));
	assert_string_equal(buf, "ro");
}

/* ---- malformed messages ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	start(f, false);
	uint8_t m[64] = {0};

	/* Shorter than a header: completed, nothing written. */
	assert_int_equal(raw_call(f, m, 5, 256), 0);
	/* No writable part at all. */
	put_le32(m, 7);
	m[4] = P9_TFLUSH;
	assert_int_equal(raw_call(f, m, 7, 0), 0);
	/* Only a writable part. */
	assert_int_equal(raw_call(f, NULL, 0, 256), 0);

	/* The size field lies: larger than the buffer, smaller than a
	 * header. */
	begin(f, P9_TCLUNK);
	m32(f, ROOT);
	uint8_t *b = f->msg;
	put_le32(b, 1000);
	assert_true(raw_call(f, b, (uint32_t)f->mlen, 256) >= 11);
	assert_int_equal(f->r[4], P9_RLERROR);
	f->roff = 7;
	assert_int_equal(r32(f), EPROTO);
	put_le32(b, 3);
	raw_call(f, b, (uint32_t)f->mlen, 256);
	assert_int_equal(f->r[4], P9_RLERROR);
	/* Truncated body: Tclunk without its fid. */
	begin(f, P9_TCLUNK);
	m16(f, 1);
	assert_int_equal(result(f, P9_TCLUNK), EPROTO);
	/* Unknown and legacy types. */
	begin(f, 200);
	assert_int_equal(result(f, 200), EPROTO);
	begin(f, 112); /* Topen of 9P2000 */
	m32(f, ROOT);
	m8(f, 0);
	assert_int_equal(result(f, 112), EPROTO);
	/* A string length past the end. */
	begin(f, P9_TWALK);
	m32(f, ROOT);
	m32(f, 2);
	m16(f, 1);
	m16(f, 1000);
	mstr(f, "abc");
	assert_int_equal(result(f, P9_TWALK), EPROTO);
	assert_int_equal(clunk(f, 2), EBADF);
	/* Too long a name. */
	char longname[400];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(walk(f, ROOT, 2, longname), ENAMETOOLONG);
	/* Twalk with 17 names. */
	const char *many[17];
	for (int i = 0; i < 17; i++)
		many[i] = "x";
	assert_int_equal(walkv(f, ROOT, 2, NULL, 17, many), EINVAL);
	/* Twrite whose count runs past the message. */
	begin(f, P9_TWRITE);
	m32(f, ROOT);
	m64(f, 0);
	m32(f, 5000);
	m32(f, 0);
	assert_int_equal(result(f, P9_TWRITE), EPROTO);
	/* A reply buffer too small for the answer: an error, no overrun.
	 * (11 bytes: room for an Rlerror only.) */
	begin(f, P9_TGETATTR);
	m32(f, ROOT);
	m64(f, P9_GETATTR_BASIC);
	put_le32(f->msg, (uint32_t)f->mlen);
	assert_int_equal(raw_call(f, f->msg, (uint32_t)f->mlen, 11), 11);
	assert_int_equal(f->r[4], P9_RLERROR);
	/* Larger than the negotiated msize. */
	assert_int_equal(version(f, 4096, "9P2000.L"), 0);
	assert_int_equal(attach(f, ROOT), 0);
	begin(f, P9_TWRITE);
	m32(f, ROOT);
	m64(f, 0);
	m32(f, 5000);
	memset(f->msg + f->mlen, 'z', 5000);
	f->mlen += 5000;
	assert_int_equal(result(f, P9_TWRITE), EMSGSIZE);
	/* Unknown fids. */
	assert_int_equal(lopen(f, 77, O_RDONLY), EBADF);
	assert_int_equal(walk(f, 77, 78, NULL), EBADF);
	assert_int_equal(walk(f, ROOT, P9_NOFID, NULL), EBADF);
}

static void test_fid_limit(void **state)
{
	struct fx *f = *state;
	start(f, false);
	/* ROOT is one; clone up to the cap. */
	for (uint32_t i = 2; i <= P9_MAX_FIDS; i++)
		assert_int_equal(walk(f, ROOT, i, NULL), 0);
	assert_int_equal(walk(f, ROOT, P9_MAX_FIDS + 1, NULL), EMFILE);
	assert_int_equal(attach(f, P9_MAX_FIDS + 1), EMFILE);
	assert_int_equal(clunk(f, 2), 0);
	assert_int_equal(walk(f, ROOT, P9_MAX_FIDS + 1, NULL), 0);
	/* A reset ends the session and frees them all. */
	f->d.ops->reset(&f->d);
	assert_int_equal(attach(f, ROOT), EPROTO);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_config_and_version),
	    T(test_read_write_create),
	    T(test_readdir),
	    T(test_dirs_rename_unlink),
	    T(test_symlinks_not_followed),
	    T(test_dotdot_and_bad_names),
	    T(test_swapped_for_symlink),
	    T(test_dir_moved_out),
	    T(test_read_only),
	    T(test_malformed),
	    T(test_fid_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
