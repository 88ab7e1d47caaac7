/* libFuzzer target for `husk load` (src/lib/image_load*.c): docker save
 * archives and OCI layouts from a hostile source, read into a store.
 *
 * Each run loads one archive, fed through a memfd, into a store that is
 * empty at the start (one per process, under $TMPDIR), with small limits
 * so that spooling to blob writers, early commits and reading JSON back
 * from the store are reached by small inputs. Then husk_store_check must
 * pass; a failed load must have recorded no image (unless it failed for
 * I/O); a load that succeeded must have recorded and reported one at
 * least. Every image is then removed and the store pruned, and it must be
 * empty again: no blob, record, reference or file in tmp/ left.
 *
 * The input is the archive itself when it looks like one (a ustar magic
 * at offset 257, or gzip, bzip2, xz or zstd magic). Anything else is read
 * as a short program: a flags byte (limits, gzip), then entries, each a
 * type (file, symlink, hard link, directory), a name and link target from
 * a list of the names that matter here (manifest.json, index.json,
 * blobs/sha256/<hex of this or an earlier entry>, `..`), and data: input
 * bytes, filler to pass the limits, or a document template (oci-layout,
 * config, manifest, index, manifest.json) whose $D1/$S1/$H1/$N1 are the
 * digest, size, hex and name of the entry one back (up to 9), perhaps
 * with input bytes spliced in. So a short run already loads images and
 * spends itself on what comes after the digests match.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_image_load.c \
 *     src/lib/image_load*.c src/lib/store*.c src/lib/layer*.c \
 *     src/lib/reference.c src/lib/error.c \
 *     -lcrypto -larchive -ljson-c -o /tmp/fuzz_image_load
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "husk/image_load.h"
#include "husk/store.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 16
#define DOC_MAX     4096
#define FILLER_MAX  (64 * 1024)
#define TAR_CAP     (2 << 20)

static char base[256];
static struct husk_store *store;
static char *tar;
static int memfd = -1;
static bool verbose; /* HUSK_FUZZ_VERBOSE=1: each load's outcome */

/* ---- the store ---------------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
	return remove(path);
}

/* libFuzzer leaves through exit() when its time is up. */
static void remove_base(void)
{
	husk_store_close(store);
	store = NULL;
	nftw(base, remove_one, 32, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	verbose = getenv("HUSK_FUZZ_VERBOSE") != NULL;
	struct husk_error err = {0};
	snprintf(base, sizeof(base), "%s/husk-fuzz-load.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(base));
	atexit(remove_base);
	CHECK(husk_store_open(base, &store, &err) == 0);
	CHECK((tar = malloc(TAR_CAP)));
	CHECK((memfd = memfd_create("fuzz-image-load", MFD_CLOEXEC)) >= 0);
	return 0;
}

/* Names in dir, leaving out dot files. */
static int count_names(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", base, dir);
	DIR *d = opendir(path);
	CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The images in the store: how many, and the ids of the first 64. */
struct ids {
	char id[64][HUSK_DIGEST_MAX];
	size_t n, kept;
};

static int collect(const struct husk_image *img, void *ctx)
{
	struct ids *ids = ctx;
	CHECK(husk_digest_valid(img->id));
	CHECK(img->n_users == 0);
	if (ids->kept < 64)
		memcpy(ids->id[ids->kept++], img->id, HUSK_DIGEST_MAX);
	ids->n++;
	return 0;
}

static void list(struct ids *ids)
{
	struct husk_error err = {0};
	ids->n = ids->kept = 0;
	CHECK(husk_store_image_list(store, collect, ids, &err) == 0);
}

static void store_check(void)
{
	struct husk_error err = {0};
	if (husk_store_check(store, &err) < 0) {
		fprintf(stderr, "husk_store_check: %s\n", err.msg);
		__builtin_trap();
	}
}

/* Everything out again, and nothing left behind. */
static void empty_store(void)
{
	struct husk_error err = {0};
	struct husk_prune_result res = {0};
	struct ids ids;
	for (list(&ids); ids.n; list(&ids))
		for (size_t i = 0; i < ids.kept; i++)
			CHECK(husk_store_image_remove(store, ids.id[i], true,
			                              NULL, NULL, &err) == 0);
	CHECK(husk_store_release(store, &err) == 0);
	CHECK(husk_store_prune(store, NULL, NULL, &res, &err) == 0);
	list(&ids);
	CHECK(ids.n == 0);
	CHECK(count_names("blobs/sha256") == 0);
	CHECK(count_names("images") == 0);
	CHECK(count_names("tmp") == 0);
	CHECK(count_names("partial") == 0);
	CHECK(count_names("refs") == 0);
}

/* ---- the entry program -------------------------------------------- */

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define OCI_CONFIG   "application/vnd.oci.image.config.v1+json"
#define OCI_TAR      "application/vnd.oci.image.layer.v1.tar"
#define AMD64        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}"
#define ARM64        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}"

static const char *const templates[] = {
    "{\"imageLayoutVersion\":\"1.0.0\"}",
    /* configs: 0, 1 and 2 layers, the newest entry on top */
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
    "\"layers\",\"diff_ids\":[]}}",
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":"
    "[\"/bin/sh\"],\"Env\":[\"PATH=/bin\"]},\"rootfs\":{\"type\":\"layers\","
    "\"diff_ids\":[\"$D1\"]}}",
    "{\"os\":\"linux\",\"config\":{\"Cmd\":\"sh\"},\"rootfs\":{\"type\":"
    "\"layers\",\"diff_ids\":[\"$D2\",\"$D1\"]}}",
    /* OCI manifests: config one back, layers before it */
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"config\":{"
    "\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"$D1\",\"size\":$S1},"
    "\"layers\":[]}",
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"config\":{"
    "\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"$D1\",\"size\":$S1},"
    "\"layers\":[{\"mediaType\":\"" OCI_TAR "\",\"digest\":\"$D2\","
    "\"size\":$S2}]}",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"$D1\",\"size\":$S1},"
    "\"layers\":[{\"mediaType\":\"" OCI_TAR "\",\"digest\":\"$D3\","
    "\"size\":$S3},{\"mediaType\":\"" OCI_TAR "+gzip\",\"digest\":\"$D2\","
    "\"size\":$S2}]}",
    /* indexes: index.json, and a multi-platform one as a blob */
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
    "\",\"digest\":\"$D1\",\"size\":$S1,\"annotations\":{"
    "\"io.containerd.image.name\":\"example.com/a:b\","
    "\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_INDEX
    "\",\"digest\":\"$D1\",\"size\":$S1,\"annotations\":{"
    "\"org.opencontainers.image.ref.name\":\"busybox:1\"}},{\"digest\":"
    "\"$D2\",\"size\":$S2}]}",
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[{"
    "\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"$D2\",\"size\":$S2," ARM64
    "},{\"mediaType\":\"" OCI_MANIFEST
    "\",\"digest\":\"$D1\",\"size\":$S1," AMD64 "}]}",
    /* docker save */
    "[{\"Config\":\"$N1\",\"RepoTags\":[\"busybox:latest\",\"a/b:c\"],"
    "\"Layers\":[\"$N2\"]}]",
    "[{\"Config\":\"$N1\",\"RepoTags\":[\"x:1\"],\"Layers\":[]},{\"Config\":"
    "\"$N2\",\"RepoTags\":null,\"Layers\":[\"$N3\",\"$N3\"]}]",
    "[{\"Config\":\"$N1\",\"Layers\":[]}]",
    "{\"busybox\":{\"latest\":\"$H1\"}}",
};
#define NTEMPLATES (sizeof(templates) / sizeof(templates[0]))

static const char *const names[] = {
    "manifest.json",
    "index.json",
    "oci-layout",
    "blobs/sha256/$H0",
    "blobs/sha256/$H0",
    "blobs/sha256/$H0",
    "blobs/sha256/$H1",
    "$H0.json",
    "$H1/layer.tar",
    "layer.tar",
    "a/layer.tar",
    "./manifest.json",
    "repositories",
    "blobs/sha256",
    "blobs",
    "../x",
    "/blobs/sha256/$H0",
    "a//b/../index.json",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static const char *const targets[] = {
    "$N1", "../../$N1", "/$N1", "../$N1",    "blobs/sha256/$H1",
    "..",  "../../..",  "",     "layer.tar", "$N2",
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

struct made {
	char name[256];
	char digest[HUSK_DIGEST_MAX];
	size_t size;
};

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

/* Expands $Dk, $Sk, $Hk and $Nk from the entries made so far (k back;
 * $H0 is own, this entry's digest). Returns the length written. */
static size_t expand(const char *t, const struct made *m, size_t n,
                     const char *own, char *out, size_t cap)
{
	static const char zero[] = "sha256:"
	                           "0000000000000000000000000000000000000000"
	                           "000000000000000000000000";
	size_t len = 0;
	for (; *t && len + 1 < cap; t++) {
		const char *v = NULL;
		char num[24];
		if (t[0] == '$' && t[1] && t[2] >= '0' && t[2] <= '9') {
			size_t k = (size_t)(t[2] - '0');
			const struct made *e = k && k <= n ? &m[n - k] : NULL;
			const char *d = k == 0 && own ? own
			                : e           ? e->digest
			                              : zero;
			switch (t[1]) {
			case 'D': v = d; break;
			case 'H': v = d + 7; break;
			case 'S':
				snprintf(num, sizeof(num), "%zu",
				         e ? e->size : 0);
				v = num;
				break;
			case 'N': v = e ? e->name : "missing"; break;
			}
		}
		if (!v) {
			out[len++] = *t;
			continue;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s", v);
		if (len >= cap)
			len = cap - 1;
		t += 2;
	}
	out[len] = '\0';
	return len;
}

/* The data of a file: input bytes, filler, or a template, perhaps with
 * input bytes spliced in. */
static size_t make_data(struct reader *r, const struct made *m, size_t n,
                        char *buf)
{
	unsigned c = next(r);
	size_t len;
	if (c < 0x60) {
		len = next(r);
		len |= (size_t)next(r) << 8;
		if (len > r->left)
			len = r->left;
		if (len > FILLER_MAX)
			len = FILLER_MAX;
		memcpy(buf, r->p, len);
		r->p += len;
		r->left -= len;
		return len;
	}
	if (c < 0x70) {
		len = ((size_t)next(r) + 1) * 256;
		memset(buf, 'a' + (int)(c & 15), len);
		return len;
	}
	len = expand(templates[c % NTEMPLATES], m, n, NULL, buf, DOC_MAX);
	unsigned splice = next(r);
	if (splice & 0x80 && len) {
		size_t at = next(r);
		at = (at << 8 | next(r)) % len;
		size_t k = splice & 7;
		if (k > r->left)
			k = r->left;
		if (splice & 0x40) { /* insert */
			memmove(buf + at + k, buf + at, len - at);
			len += k;
		} else if (at + k > len) {
			len = at + k;
		}
		memcpy(buf + at, r->p, k);
		r->p += k;
		r->left -= k;
	}
	return len;
}

/* Writes the entries the input describes as a tar in buf. */
static size_t program_to_tar(struct reader *r, bool gzip, char *out)
{
	static char data[FILLER_MAX + 16];
	struct made made[MAX_ENTRIES];
	size_t n = 0, used = 0;
	struct archive *a = archive_write_new();
	CHECK(a);
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	CHECK(archive_write_open_memory(a, out, TAR_CAP, &used) == ARCHIVE_OK);
	while (n < MAX_ENTRIES && r->left) {
		static const mode_t types[] = {AE_IFREG, AE_IFREG, AE_IFREG,
		                               AE_IFREG, AE_IFREG, AE_IFLNK,
		                               AE_IFREG, AE_IFDIR};
		unsigned t = next(r) & 7;
		const char *name = names[next(r) % NNAMES];
		const char *target = targets[next(r) % NTARGETS];
		struct made *e = &made[n];
		size_t len = 0;
		if (t < 5)
			len = make_data(r, made, n, data);
		*e = n ? made[n - 1] : (struct made){0};
		if (t < 5)
			CHECK(husk_sha256_buf(data, len, e->digest, NULL) == 0);
		if (t < 5)
			e->size = len;
		char path[256], link[256];
		expand(name, made, n, t < 5 ? e->digest : NULL, path,
		       sizeof(path));
		expand(target, made, n, NULL, link, sizeof(link));
		snprintf(e->name, sizeof(e->name), "%s", path);
		struct archive_entry *ae = archive_entry_new();
		CHECK(ae);
		archive_entry_set_pathname(ae, path);
		archive_entry_set_filetype(ae, types[t]);
		archive_entry_set_perm(ae, t == 7 ? 0755 : 0644);
		archive_entry_set_mtime(ae, 1600000000, 0);
		if (t == 5)
			archive_entry_set_symlink(ae, link);
		if (t == 6)
			archive_entry_set_hardlink(ae, link);
		archive_entry_set_size(ae, (la_int64_t)len);
		if (archive_write_header(a, ae) == ARCHIVE_OK && len)
			archive_write_data(a, data, len);
		archive_entry_free(ae);
		n++;
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

static bool looks_like_archive(const uint8_t *d, size_t n)
{
	return (n >= 262 && !memcmp(d + 257, "ustar", 5)) ||
	       (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) ||
	       (n >= 3 && !memcmp(d, "BZh", 3)) ||
	       (n >= 6 && !memcmp(d,
	                          "\xfd"
	                          "7zXZ\0",
	                          6)) ||
	       (n >= 4 && !memcmp(d, "\x28\xb5\x2f\xfd", 4));
}

/* ---- one run ------------------------------------------------------ */

static void loaded(const char *line, void *ctx)
{
	size_t *n = ctx;
	CHECK(strncmp(line, "Loaded image: ", 14) == 0 ||
	      strncmp(line, "Loaded image ID: sha256:", 24) == 0);
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_load_limits lim = {
	    .json_max = 64 << 10,
	    .memory_max = 256 << 10,
	    .open_blobs_max = 8,
	};
	struct husk_error err = {0};
	const void *archive = data;
	size_t len = size, n_loaded = 0;

	if (!looks_like_archive(data, size)) {
		struct reader r = {data, size};
		unsigned flags = next(&r);
		if (flags & 1) {
			lim.json_max = 1024;
			lim.memory_max = 2048;
			lim.open_blobs_max = 1 + (flags >> 1 & 1);
		}
		len = program_to_tar(&r, flags & 4, tar);
		archive = tar;
	}
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, archive, len, 0) == (ssize_t)len);
	CHECK(lseek(memfd, 0, SEEK_SET) == 0);

	int rc = husk_image_load_limited(store, NULL, memfd, &lim, loaded,
	                                 &n_loaded, &err);
	CHECK(rc <= 0);
	CHECK(rc == 0 || (err.code == -rc && err.msg[0]));
	if (verbose)
		fprintf(stderr, "load: %d %s\n", rc, rc ? err.msg : "ok");
	store_check();
	struct ids ids;
	list(&ids);
	if (rc == 0) {
		CHECK(ids.n >= 1 && n_loaded >= ids.n);
	} else if (err.code != EIO && err.code != ENOSPC &&
	           err.code != EDQUOT && err.code != ENOMEM) {
		/* A refused archive leaves no image and no reference. */
		CHECK(ids.n == 0 && n_loaded == 0);
	}
	empty_store();
	return 0;
}
