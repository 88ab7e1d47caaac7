/* The entry table of `husk load`: the archive is read once, in order, and
 * every regular file, symlink and hard link is recorded by its cleaned
 * name with the sha256 of its data. Which files matter is known only when
 * manifest.json or index.json has been read, and that usually comes last;
 * so small files are kept in memory and large ones spooled into store
 * blob writers, left uncommitted until the plan is checked. */
#include "image_load_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layer_int.h"

#define READ_BLOCK (64 * 1024)
#define BLOB_DIR   "blobs/sha256/"

/* libarchive's failure. Its errno is a format code or -1 for most damage;
 * only real I/O and memory errors keep theirs. */
static int archive_fail(struct load_ctx *c, struct archive *a, const char *name)
{
	int code = archive_errno(a);
	if (code != EIO && code != ENOMEM)
		code = EBADMSG;
	const char *why = archive_error_string(a);
	if (!why)
		why = "unknown error";
	if (name)
		return husk_err(c->err, code, "archive entry '%s': %s", name,
		                why);
	return husk_err(c->err, code, "reading the archive: %s", why);
}

/* "sha256:<hex>" into out when name is blobs/sha256/<64 hex>. */
static bool blob_name_digest(const char *name, char out[HUSK_DIGEST_MAX])
{
	const char *hex = name + strlen(BLOB_DIR);
	if (strncmp(name, BLOB_DIR, strlen(BLOB_DIR)) != 0 ||
	    strlen(hex) != HUSK_DIGEST_HEX)
		return false;
	memcpy(out, "sha256:", 7);
	memcpy(out + 7, hex, HUSK_DIGEST_HEX + 1);
	return husk_digest_valid(out);
}

/* manifest.json and index.json are refused from their header when too
 * big, so a hostile 100 MB one is never read. */
static bool is_top_json(const char *name)
{
	return strcmp(name, "manifest.json") == 0 ||
	       strcmp(name, "index.json") == 0 ||
	       strcmp(name, "oci-layout") == 0 ||
	       strcmp(name, "repositories") == 0;
}

int load_entry_commit(struct load_ctx *c, struct load_entry *e)
{
	char got[HUSK_DIGEST_MAX];
	int rc;
	if (e->in_store)
		return 0;
	if (e->data) {
		rc = husk_store_blob_put(c->s, e->data, e->size, got, c->err);
	} else if (e->w) {
		rc = husk_blob_writer_commit(e->w, got, c->err);
		e->w = NULL;
		c->open_writers--;
	} else {
		return husk_err(c->err, EIO, "archive entry '%s' has no data",
		                e->name);
	}
	if (rc == 0 && strcmp(got, e->digest) != 0)
		rc = husk_err(c->err, EIO,
		              "archive entry '%s' changed while loaded",
		              e->name);
	if (rc == 0)
		e->in_store = true;
	return rc;
}

/* Too many writers would run out of descriptors: the oldest open ones
 * are committed (verified, content-addressed, held in our lease). */
static int spill(struct load_ctx *c)
{
	while (c->open_writers > c->lim.open_blobs_max &&
	       c->spill_next < c->n) {
		struct load_entry *e = &c->e[c->spill_next++];
		if (e->w) {
			int rc = load_entry_commit(c, e);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Where the data of a new file goes: memory when small, else a writer;
 * a blob the store already has (by its name) is only hashed. */
static int sink_open(struct load_ctx *c, struct load_entry *e, int64_t size,
                     bool *hash_only)
{
	char named[HUSK_DIGEST_MAX];
	bool is_blob = blob_name_digest(e->name, named);
	*hash_only = false;
	if (size >= 0 && (uint64_t)size <= c->lim.json_max &&
	    c->mem_used + (size_t)size <= c->lim.memory_max) {
		if (!(e->data = malloc((size_t)size + 1)))
			return husk_err(c->err, ENOMEM, "out of memory");
		c->mem_used += (size_t)size;
		return 0;
	}
	if (is_blob && husk_store_blob_has(c->s, named)) {
		*hash_only = true;
		return 0;
	}
	int rc = husk_store_blob_begin(c->s, is_blob ? named : NULL,
	                               size >= 0 ? size : HUSK_SIZE_UNKNOWN, 0,
	                               &e->w, c->err);
	if (rc == 0)
		c->open_writers++;
	return rc;
}

static int sink_write(struct load_ctx *c, struct load_entry *e, int64_t size,
                      const void *p, size_t n)
{
	if (e->data) {
		/* A file on disk may grow while it is read. */
		if (e->size + n > (uint64_t)size)
			return husk_err(c->err, EBADMSG,
			                "archive entry '%s' is longer than its "
			                "header says",
			                e->name);
		memcpy(e->data + e->size, p, n);
	} else if (e->w) {
		int rc = husk_blob_writer_write(e->w, p, n, c->err);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; e->size + i < sizeof(e->magic) && i < n; i++)
		e->magic[e->size + i] = ((const unsigned char *)p)[i];
	e->size += n;
	return 0;
}

/* Once the data is in: a blob's name must be its digest, and a blob the
 * store already has is held there instead of written again. */
static int sink_close(struct load_ctx *c, struct load_entry *e, bool hash_only)
{
	char named[HUSK_DIGEST_MAX];
	if (e->data)
		e->data[e->size] = '\0';
	if (blob_name_digest(e->name, named) && strcmp(named, e->digest) != 0)
		return husk_err(c->err, EBADMSG,
		                "blob '%s' in the archive is corrupt: its "
		                "sha256 is %s",
		                e->name, e->digest);
	if (!hash_only && !e->w)
		return 0;
	int held = husk_store_blob_hold(c->s, e->digest, c->err);
	if (held < 0)
		return held;
	if (hash_only && held == 0)
		return husk_err(c->err, EAGAIN,
		                "blob %s left the store during the load; try "
		                "again",
		                e->digest);
	if (held == 1 && e->w) {
		husk_blob_writer_abort(e->w);
		e->w = NULL;
		c->open_writers--;
	}
	e->in_store = held == 1;
	return spill(c);
}

static int read_file(struct load_ctx *c, struct archive *a,
                     struct load_entry *e, int64_t size)
{
	char buf[READ_BLOCK];
	bool hash_only;
	if (is_top_json(e->name) && size > (int64_t)c->lim.json_max)
		return husk_err(c->err, EMSGSIZE,
		                "%s is %" PRId64 " bytes, more than the %zu "
		                "allowed",
		                e->name, size, c->lim.json_max);
	struct husk_sha256 *h = husk_sha256_new();
	if (!h)
		return husk_err(c->err, ENOMEM, "out of memory");
	int rc = sink_open(c, e, size, &hash_only);
	while (rc == 0) {
		la_ssize_t r = archive_read_data(a, buf, sizeof(buf));
		if (r < 0)
			rc = archive_fail(c, a, e->name);
		if (r <= 0)
			break;
		if (husk_sha256_update(h, buf, (size_t)r) < 0)
			rc = husk_err(c->err, EIO, "sha256 failed");
		else
			rc = sink_write(c, e, size, buf, (size_t)r);
	}
	if (rc == 0 && husk_sha256_final(h, e->digest) < 0)
		rc = husk_err(c->err, EIO, "sha256 failed");
	husk_sha256_free(h);
	return rc < 0 ? rc : sink_close(c, e, hash_only);
}

/* The name relative to the archive (a disk walk gives "PREFIX/name"),
 * cleaned; false for names to leave out (too long, or climbing out). */
static bool entry_name(const char *raw, const char *prefix, char *out)
{
	if (!raw)
		return false;
	if (prefix) {
		size_t n = strlen(prefix);
		if (strncmp(raw, prefix, n) != 0 || (raw[n] && raw[n] != '/'))
			return false;
		raw += n;
	}
	return layer_clean_path(raw, out, LOAD_NAME_MAX) == 0 && out[0];
}

/* The link part of a new entry; false to leave the entry out. */
static bool entry_link(struct archive_entry *ae, struct load_entry *e,
                       char *buf)
{
	const char *hard = archive_entry_hardlink(ae);
	if (hard) {
		/* From the archive root: kept only when it stays inside. */
		e->kind = LOAD_HARDLINK;
		if (layer_clean_path(hard, buf, LOAD_NAME_MAX) < 0 || !buf[0])
			return false;
		e->link = strdup(buf);
		return true;
	}
	if (archive_entry_filetype(ae) == AE_IFLNK) {
		/* Checked when followed: only then is it known to matter. */
		const char *t = archive_entry_symlink(ae);
		e->kind = LOAD_SYMLINK;
		e->link = strdup(t ? t : "");
		return true;
	}
	e->kind = LOAD_FILE;
	return archive_entry_filetype(ae) == AE_IFREG;
}

static int add_entry(struct load_ctx *c, struct archive *a,
                     struct archive_entry *ae, const char *prefix)
{
	char name[LOAD_NAME_MAX], link[LOAD_NAME_MAX];
	struct load_entry e = {0};
	if (!entry_name(archive_entry_pathname(ae), prefix, name) ||
	    !entry_link(ae, &e, link)) {
		free(e.link);
		return 0;
	}
	if (c->n >= LOAD_ENTRIES_MAX) {
		free(e.link);
		return husk_err(c->err, E2BIG,
		                "the archive has more than %d entries",
		                LOAD_ENTRIES_MAX);
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		void *p = realloc(c->e, cap * sizeof(*c->e));
		if (!p) {
			free(e.link);
			return husk_err(c->err, ENOMEM, "out of memory");
		}
		c->e = p;
		c->cap = cap;
	}
	e.seq = c->n;
	e.name = strdup(name);
	c->e[c->n++] = e;
	if (!e.name || (e.kind != LOAD_FILE && !e.link))
		return husk_err(c->err, ENOMEM, "out of memory");
	if (e.kind != LOAD_FILE)
		return 0;
	int64_t size =
	    archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
	return read_file(c, a, &c->e[c->n - 1], size);
}

static void entry_free(struct load_ctx *c, struct load_entry *e)
{
	if (e->w) {
		husk_blob_writer_abort(e->w);
		c->open_writers--;
	}
	free(e->name);
	free(e->link);
	free(e->data);
	memset(e, 0, sizeof(*e));
}

void load_entries_free(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		entry_free(c, &c->e[i]);
	free(c->e);
	c->e = NULL;
	c->n = c->cap = 0;
}

static int by_name_then_seq(const void *x, const void *y)
{
	const struct load_entry *a = x, *b = y;
	int d = strcmp(a->name, b->name);
	if (d)
		return d;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorted by name for lookups; of entries with one name the last in the
 * archive stays, as extraction would leave it. */
static void sort_and_dedup(struct load_ctx *c)
{
	if (c->n == 0)
		return;
	qsort(c->e, c->n, sizeof(*c->e), by_name_then_seq);
	size_t out = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (i + 1 < c->n && strcmp(c->e[i].name, c->e[i + 1].name) == 0)
			entry_free(c, &c->e[i]);
		else
			c->e[out++] = c->e[i];
	}
	c->n = out;
}

int load_read_archive(struct load_ctx *c, struct archive *a, const char *prefix)
{
	const char *last = NULL;
	for (;;) {
		struct archive_entry *ae;
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			if (!last)
				return archive_fail(c, a, NULL);
			char after[LOAD_NAME_MAX + 32];
			snprintf(after, sizeof(after), "after '%s'", last);
			return archive_fail(c, a, after);
		}
		int rc = add_entry(c, a, ae, prefix);
		if (rc < 0)
			return rc;
		if (c->n)
			last = c->e[c->n - 1].name;
		/* A disk walk only enters directories it is told to; with
		 * physical symlinks it never leaves the tree. */
		if (prefix && archive_entry_filetype(ae) == AE_IFDIR &&
		    archive_read_disk_can_descend(a))
			archive_read_disk_descend(a);
	}
	sort_and_dedup(c);
	return 0;
}

static struct load_entry *find(struct load_ctx *c, const char *name)
{
	for (size_t lo = 0, hi = c->n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(name, c->e[mid].name);
		if (d == 0)
			return &c->e[mid];
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Follows symlinks and hard links lexically inside the archive. */
static int follow(struct load_ctx *c, char *path, const char *what,
                  struct load_entry **out)
{
	char dir[LOAD_NAME_MAX], joined[2 * LOAD_NAME_MAX + 2];
	const char *base;
	for (int hops = 0; hops <= LOAD_LINK_HOPS; hops++) {
		struct load_entry *e = find(c, path);
		if (!e)
			return husk_err(c->err, ENOENT,
			                "%s: '%s' is not in the archive", what,
			                path);
		if (e->kind == LOAD_FILE) {
			*out = e;
			return 0;
		}
		if (e->kind == LOAD_HARDLINK) {
			snprintf(path, LOAD_NAME_MAX, "%s", e->link);
			continue;
		}
		layer_split(e->name, dir, sizeof(dir), &base);
		snprintf(joined, sizeof(joined), "%s/%s", dir, e->link);
		if (e->link[0] == '/' ||
		    layer_clean_path(joined, path, LOAD_NAME_MAX) < 0 ||
		    !path[0])
			return husk_err(c->err, EINVAL,
			                "%s: symlink '%s' points outside the "
			                "archive ('%s')",
			                what, e->name, e->link);
	}
	return husk_err(c->err, ELOOP, "%s: too many symlinks", what);
}

/* True when a path from a manifest has a `..` component. */
static bool has_dotdot(const char *p)
{
	while (*p) {
		const char *end = strchrnul(p, '/');
		if (end - p == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

int load_resolve(struct load_ctx *c, const char *path, const char *what,
                 struct load_entry **out)
{
	char clean[LOAD_NAME_MAX];
	*out = NULL;
	if (path[0] == '/' || has_dotdot(path))
		return husk_err(c->err, EINVAL,
		                "%s: '%s' is not a relative path inside the "
		                "archive",
		                what, path);
	if (layer_clean_path(path, clean, sizeof(clean)) < 0 || !clean[0])
		return husk_err(c->err, EINVAL, "%s: invalid path '%.300s'",
		                what, path);
	return follow(c, clean, what, out);
}

int load_blob(struct load_ctx *c, const char *digest, const char *what,
              struct load_entry **out)
{
	char path[LOAD_NAME_MAX];
	snprintf(path, sizeof(path), BLOB_DIR "%s", husk_digest_hex(digest));
	int rc = load_resolve(c, path, what, out);
	if (rc == -ENOENT)
		return husk_err(c->err, ENOENT,
		                "%s: blob %s is not in the archive", what,
		                digest);
	/* A link's target is checked against its own name only. */
	if (rc == 0 && strcmp((*out)->digest, digest) != 0)
		return husk_err(c->err, EBADMSG,
		                "%s: blob %s in the archive has sha256 %s",
		                what, digest, (*out)->digest);
	return rc;
}

struct load_entry *load_find(struct load_ctx *c, const char *name)
{
	return find(c, name);
}
