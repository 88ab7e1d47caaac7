/* The local image store: content-addressed blobs, image records, tags,
 * and the containers that use each image.
 *
 * Layout under the root (default /var/lib/husk, or $HUSK_ROOT):
 *
 *   lock                     flock(2)ed exclusively around every metadata
 *                            change: records, tags, container refs, GC
 *   blobs/sha256/<hex>       complete blobs, verified before they appear
 *   tmp/<random>             blob writes and metadata files in progress;
 *                            each is flock(2)ed by its writer, so one that
 *                            nobody holds is a leftover of a crash
 *   partial/<hex>            resumable downloads, flocked while written
 *   images/<id-hex>.json     one record per image, named by its id
 *   repositories.json        references -> image id: tags
 *                            ("docker.io/library/busybox:latest") and
 *                            digests ("docker.io/library/busybox@sha256:..")
 *   refs/<id-hex>/<ctr-id>   one empty file per container using the image
 *   leases/<random>          blobs a live store handle has written or
 *                            claimed and not yet recorded in an image
 *
 * An image's id is the digest of its config blob, as in Docker.
 *
 * Crash safety: every metadata file is written to tmp/, fsynced and
 * renamed into place; a blob appears in blobs/ only by rename after its
 * size and sha256 were checked. A record is written before the tags that
 * point to it and removed after them, so a crash leaves at worst an
 * untagged image that `prune` removes, never a tag without its record.
 *
 * Concurrency: several processes may use one store. Blob data is written
 * without the global lock; the short step that publishes a blob takes it.
 * Garbage collection (in rmi and prune) runs under the lock and keeps
 * every blob that a record references or that a live handle holds in its
 * lease: a blob committed (or claimed with husk_store_blob_hold) by a
 * pull is safe from a concurrent rmi until husk_store_image_put records
 * it, or the handle is closed. A lease whose handle died (its flock is
 * free) is dropped by the next GC.
 *
 * A struct husk_store is for one thread at a time.
 */
#ifndef HUSK_STORE_H
#define HUSK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"
#include "husk/reference.h"

#define HUSK_STORE_DEFAULT_ROOT "/var/lib/husk"
/* Blob size not known in advance (for husk_store_blob_begin). */
#define HUSK_SIZE_UNKNOWN (-1)

struct husk_store;
struct husk_blob_writer;

/* Opens (creating when missing) the store at root; root NULL means
 * $HUSK_ROOT, or HUSK_STORE_DEFAULT_ROOT when that is unset or empty.
 * Removes leftovers of crashed writers from tmp/ (files nobody holds). */
int husk_store_open(const char *root, struct husk_store **out,
                    struct husk_error *err);
/* Closes the store and drops its lease. NULL is allowed. */
void husk_store_close(struct husk_store *s);
const char *husk_store_root(const struct husk_store *s);

/* ---- blobs ---- */

/* Writes go to partial/<hex> and survive abort, crashes and restarts, so
 * a download can resume (needs a digest). Without it writes go to tmp/,
 * removed by abort. */
#define HUSK_BLOB_RESUMABLE 1u

/* Starts writing the blob with digest (NULL: computed at commit; then
 * HUSK_BLOB_RESUMABLE is not allowed) and size (HUSK_SIZE_UNKNOWN: not
 * checked). A resumable writer continues the data already in partial/;
 * husk_blob_writer_offset says from which byte. EBUSY when another writer
 * holds that partial. The blob already being in the store is no error:
 * commit then just checks the new data. */
int husk_store_blob_begin(struct husk_store *s, const char *digest,
                          int64_t size, unsigned flags,
                          struct husk_blob_writer **out,
                          struct husk_error *err);
/* Bytes already written (the resume point); also the write position. */
uint64_t husk_blob_writer_offset(const struct husk_blob_writer *w);
/* Appends n bytes. EFBIG at once, and nothing written, when they would
 * take the blob past its expected size; the writer stays usable for
 * abort (a resumable one keeps the valid data before). */
int husk_blob_writer_write(struct husk_blob_writer *w, const void *p, size_t n,
                           struct husk_error *err);
/* Checks size and sha256, fsyncs, and publishes the blob (frees w either
 * way). EBADMSG "digest mismatch: expected X, got Y" or a size mismatch
 * leaves no blob and removes the data (a resumable writer that is merely
 * short keeps its partial, to resume). The digest goes to digest_out
 * (may be NULL). The blob is held in the handle's lease until an image
 * records it. */
int husk_blob_writer_commit(struct husk_blob_writer *w,
                            char digest_out[HUSK_DIGEST_MAX],
                            struct husk_error *err);
/* Stops writing (frees w; NULL allowed): a tmp/ file is removed, a
 * partial kept for a later resume. */
void husk_blob_writer_abort(struct husk_blob_writer *w);

/* Size of the resumable data in partial/ for digest (0 when none). */
int husk_store_blob_partial(struct husk_store *s, const char *digest,
                            uint64_t *offset, struct husk_error *err);
/* Writes ROOT/blobs/sha256/<hex> into out (the path, whether or not the
 * blob exists). -ENOSPC when cap is too small, EINVAL for a bad digest. */
int husk_store_blob_path(const struct husk_store *s, const char *digest,
                         char *out, size_t cap, struct husk_error *err);
/* True when the blob is in the store (not verified). */
bool husk_store_blob_has(struct husk_store *s, const char *digest);
/* Like has, and if present keeps the blob from GC in this handle's lease
 * until an image records it: what a pull calls for a blob it skips
 * downloading. Returns 1 when held, 0 when absent, <0 on error. */
int husk_store_blob_hold(struct husk_store *s, const char *digest,
                         struct husk_error *err);
/* Drops every hold of this handle (a pull that gave up). */
int husk_store_release(struct husk_store *s, struct husk_error *err);

/* Opens a blob read-only into *fd. ENOENT when absent; EBADMSG when its
 * size differs from size (unless HUSK_SIZE_UNKNOWN) or, with verify, its
 * sha256 from the digest. The fd is at offset 0. */
int husk_store_blob_open(struct husk_store *s, const char *digest, int64_t size,
                         bool verify, int *fd, struct husk_error *err);

/* Reads a whole blob (at most max bytes, else EFBIG) into a malloc'd
 * NUL-terminated buffer; for manifests and configs. Verifies the digest. */
int husk_store_blob_read(struct husk_store *s, const char *digest, size_t max,
                         char **data, size_t *len, struct husk_error *err);

/* Stores n bytes at p as a blob (begin, write, commit in one); the digest
 * goes to digest_out. For manifests and configs already in memory. */
int husk_store_blob_put(struct husk_store *s, const void *p, size_t n,
                        char digest_out[HUSK_DIGEST_MAX],
                        struct husk_error *err);

/* ---- images ---- */

struct husk_layer_desc {
	char digest[HUSK_DIGEST_MAX]; /* the blob as stored (compressed) */
	uint64_t size;                /* its size in bytes */
	char media_type[128];         /* as the manifest says; may be "" */
};

struct husk_image_layer {
	char digest[HUSK_DIGEST_MAX];  /* blob digest (compressed) */
	char diff_id[HUSK_DIGEST_MAX]; /* uncompressed tar, from the config */
	uint64_t size;
	char media_type[128];
};

struct husk_image {
	char id[HUSK_DIGEST_MAX];              /* = config_digest */
	char config_digest[HUSK_DIGEST_MAX];   /* blob with the image config */
	char manifest_digest[HUSK_DIGEST_MAX]; /* "" when not known */
	char os[32], architecture[32], variant[32]; /* from the config */
	char created[64];  /* the config's "created", "" when absent */
	int64_t stored_at; /* when first recorded, seconds since the epoch */
	uint64_t size;     /* config + compressed layer sizes, in bytes */
	size_t n_layers;
	struct husk_image_layer *layers; /* base first */
	/* References pointing at this image, full normalised form, sorted:
	 * tags ("docker.io/library/busybox:latest") and digests. */
	size_t n_refs;
	char **refs;
	size_t n_users; /* containers using it (husk_store_image_ref) */
};

/* Frees what husk_store_image_get/put filled in; the struct itself
 * belongs to the caller and is zeroed. */
void husk_image_free(struct husk_image *img);

struct husk_image_spec {
	const char *config_digest;   /* required; the image id */
	const char *manifest_digest; /* NULL or "" when none */
	const struct husk_layer_desc *layers;
	size_t n_layers;
};

/* Records an image, after checking that its config and layer blobs are in
 * the store (ENOENT otherwise), that the config parses and has one diff_id
 * per layer (EINVAL). name (NULL: none) then points at it: its tag and,
 * with a manifest digest, "name@manifest"; a tag moved from another image
 * is moved atomically. Putting an id again replaces its record. Releases
 * this handle's holds on the blobs it records. out (may be NULL) receives
 * the record. */
int husk_store_image_put(struct husk_store *s, const struct husk_ref *name,
                         const struct husk_image_spec *spec,
                         struct husk_image *out, struct husk_error *err);

/* Adds the tag name to an image found as in husk_store_image_get:
 * `husk tag`. A name with a digest is refused (EINVAL), as in Docker. */
int husk_store_image_tag(struct husk_store *s, const char *what,
                         const struct husk_ref *name, struct husk_error *err);

/* Finds an image by, in this order: "sha256:<hex>" (id or id prefix), a
 * reference (name[:tag] or name@digest, normalised; in name:tag@digest
 * the digest decides, as in Docker), or a unique id
 * prefix of hex digits (as `docker images` shows them). ENOENT "no such
 * image: X" when nothing matches; EINVAL when a prefix is ambiguous. */
int husk_store_image_get(struct husk_store *s, const char *what,
                         struct husk_image *img, struct husk_error *err);

/* Calls fn for every image, newest first; fn returning non-zero stops the
 * walk and is returned. img is valid during the call only. */
typedef int (*husk_image_fn)(const struct husk_image *img, void *ctx);
int husk_store_image_list(struct husk_store *s, husk_image_fn fn, void *ctx,
                          struct husk_error *err);

enum husk_rmi_event {
	HUSK_RMI_UNTAGGED, /* what: the reference, familiar form */
	HUSK_RMI_DELETED,  /* what: the image id */
};
typedef void (*husk_rmi_fn)(enum husk_rmi_event ev, const char *what,
                            void *ctx);

/* `husk rmi`, Docker's rules. By reference: removes that reference (and,
 * when it was the repository's last tag, its digest references); the
 * image is deleted when no reference is left. By id: removes all its
 * references and the image; EBUSY "must be forced" when they span several
 * repositories, unless force. An image a container uses is never deleted:
 * EBUSY "image is being used by container X"; with force only its
 * references are removed. Deleting runs GC. fn (may be NULL) reports
 * each step after it is done; nothing changes on failure. */
int husk_store_image_remove(struct husk_store *s, const char *what, bool force,
                            husk_rmi_fn fn, void *ctx, struct husk_error *err);

struct husk_prune_result {
	size_t images_deleted;
	size_t blobs_deleted;
	uint64_t bytes_freed;
};

/* Deletes every image with no reference and no container, then every blob
 * no image references and no live handle holds, and partial downloads
 * nobody is writing. fn (may be NULL) reports deleted images. */
int husk_store_prune(struct husk_store *s, husk_rmi_fn fn, void *ctx,
                     struct husk_prune_result *res, struct husk_error *err);

/* ---- containers using images ---- */

/* Records that container_id (1..128 of [A-Za-z0-9_.-], not "." or "..")
 * uses the image with id image_id (a full "sha256:" id); ENOENT when the
 * image is not in the store. Idempotent. */
int husk_store_image_ref(struct husk_store *s, const char *image_id,
                         const char *container_id, struct husk_error *err);
/* Drops that record; no error when it was not there. */
int husk_store_image_unref(struct husk_store *s, const char *image_id,
                           const char *container_id, struct husk_error *err);

/* ---- image configs ---- */

/* What `husk run IMAGE` and `husk inspect` need from an image config
 * (OCI image-spec config, the same as Docker's). Lists are NULL-terminated
 * (argv style) with their counts; NULL and 0 when the field is absent or
 * null. Strings are NULL when absent. */
struct husk_image_config {
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char **env; /* "KEY=value" */
	size_t n_env;
	char *working_dir;
	char *user;
	char *stop_signal;
	char os[32], architecture[32], variant[32];
	char created[64];
	char **diff_ids;
	size_t n_diff_ids;
};

/* Parses config JSON (len bytes; need not be NUL-terminated). Missing or
 * null fields are empty; a field of the wrong type is EINVAL naming it.
 * As in Docker, Entrypoint and Cmd may also be a single string. */
int husk_image_config_parse(const char *json, size_t len,
                            struct husk_image_config *cfg,
                            struct husk_error *err);
/* Reads and parses img's config blob. */
int husk_store_image_config(struct husk_store *s, const struct husk_image *img,
                            struct husk_image_config *cfg,
                            struct husk_error *err);
/* Frees the fields and zeroes cfg. */
void husk_image_config_free(struct husk_image_config *cfg);

/* ---- checking ---- */

/* Verifies the whole store: every blob's sha256 against its name, every
 * record (its blobs present, diff_ids matching its config), every
 * reference and container ref pointing at a record. The first problem is
 * returned (EBADMSG for a corrupt blob, EUCLEAN otherwise) with a count
 * of the others. */
int husk_store_check(struct husk_store *s, struct husk_error *err);

#endif
