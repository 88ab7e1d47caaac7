/* `husk load`: importing images from archives into the store.
 *
 * Formats read:
 *
 *  - `docker save` archives: manifest.json ([{Config, RepoTags, Layers}]),
 *    with the legacy per-layer directories (<id>/VERSION, json, layer.tar,
 *    layer.tar often a symlink to another layer's) or, from Docker 25 on,
 *    an OCI layout beside it whose blobs manifest.json names. When an
 *    archive has manifest.json it is read as Docker reads it, and
 *    index.json is ignored.
 *  - OCI image layouts (oci-layout, index.json, blobs/sha256/<hex>), as a
 *    directory or as a tar of one. Each descriptor of index.json is an
 *    image; one that is an index (multi-platform) gives the manifest for
 *    this host's platform (linux and the machine's architecture) among
 *    those the archive holds.
 *
 *  A tar may be compressed (gzip, bzip2, xz, zstd: whatever libarchive
 *  detects), as `docker load` accepts.
 *
 * Names: RepoTags (docker), or the descriptor's io.containerd.image.name
 * annotation, else org.opencontainers.image.ref.name when it is a full
 * reference ("busybox:1", "example.com/app:v2"); a ref.name that is a bare
 * tag ("latest") names no repository, so that image is loaded by id. An
 * OCI image's manifest digest is recorded too (the store then also adds
 * "name@<manifest digest>").
 *
 * What is checked: every blob's sha256 (a blob named blobs/sha256/<hex>
 * must hash to that name, a legacy <hex>.json config to its name); a
 * docker layer's sha256 must equal the config's rootfs.diff_ids entry (its
 * layers are uncompressed tars); an OCI layer's size and digest must match
 * its descriptor, its media type must be one husk applies
 * (husk_layer_check_media_type: EPROTONOSUPPORT otherwise), and an
 * uncompressed one's digest must equal its diff_id; manifests and indexes
 * must have a known media type (EPROTONOSUPPORT), configs a container
 * image config media type. Paths in manifest.json must be relative and
 * without `..` (EINVAL); symlinks and hard links inside the archive are
 * followed lexically and must stay inside it. A missing file is ENOENT, a
 * digest mismatch EBADMSG, malformed JSON EINVAL, JSON larger than
 * json_max EMSGSIZE (manifest.json and index.json are refused from the tar
 * header, before their data is read), a damaged or truncated archive
 * EBADMSG (EIO for a read error) with libarchive's message.
 *
 * How an archive is read: once, as a stream (a pipe is fine), because
 * manifest.json usually comes after the layers. Small files (at most
 * json_max each, memory_max in all) are kept in memory; larger ones are
 * written as they stream past into store blob writers (ROOT/tmp/), which
 * are committed only after every image of the archive has been checked.
 * So a hostile or damaged archive leaves the store unchanged: no image,
 * no reference, no blob. Two cases bend this: when more than
 * open_blobs_max large files are pending, the oldest is committed early
 * (a verified, content-addressed blob, held by this handle's lease and
 * removed by a later prune if no image records it); and a manifest or
 * config that did not fit in memory is committed to be read back. A blob
 * the store already has is held (husk_store_blob_hold) instead of stored
 * again; one named by its digest (blobs/sha256/) is then only hashed,
 * never written to tmp/. Images are recorded with husk_store_image_put
 * once all their blobs are committed; an I/O failure in that last step
 * can leave the images before it loaded.
 *
 * Not read: docker save archives from before Docker 1.10 (repositories
 * without manifest.json: EPROTONOSUPPORT), and docker layer.tar files
 * that are compressed (`docker load` unpacks those; here the diff_id
 * check fails, EBADMSG, with a message saying the layer is compressed).
 *
 * A directory is walked without following symlinks out of it; its files
 * are read the same way.
 */
#ifndef HUSK_IMAGE_LOAD_H
#define HUSK_IMAGE_LOAD_H

#include <stddef.h>

#include "husk/error.h"
#include "husk/store.h"

/* Defaults of struct husk_load_limits. */
#define HUSK_LOAD_JSON_MAX       (4u << 20)
#define HUSK_LOAD_MEMORY_MAX     (64u << 20)
#define HUSK_LOAD_OPEN_BLOBS_MAX 256u

/* Called once per name loaded, with the whole line to show, as Docker
 * writes it: "Loaded image: busybox:latest" (the familiar form), or
 * "Loaded image ID: sha256:<hex>" for an image with no name. No newline. */
typedef void (*husk_load_fn)(const char *line, void *ctx);

/* Loads every image in the archive or OCI layout directory at path ("-"
 * is not special here: the front end passes stdin to _fd). */
int husk_image_load(struct husk_store *s, const char *path, husk_load_fn loaded,
                    void *ctx, struct husk_error *err);

/* The same from a tar stream on fd (read to its end, not closed). */
int husk_image_load_fd(struct husk_store *s, int fd, husk_load_fn loaded,
                       void *ctx, struct husk_error *err);

/* Bounds on what one load keeps; 0 in a field means its default. */
struct husk_load_limits {
	size_t json_max;       /* largest manifest, index or config */
	size_t memory_max;     /* small files kept in memory, in all */
	size_t open_blobs_max; /* large files spooled uncommitted at once
	                          (also kept under RLIMIT_NOFILE / 4) */
};

/* husk_image_load (path not NULL) or husk_image_load_fd (path NULL) with
 * limits (NULL: the defaults): for tests and tools. */
int husk_image_load_limited(struct husk_store *s, const char *path, int fd,
                            const struct husk_load_limits *lim,
                            husk_load_fn loaded, void *ctx,
                            struct husk_error *err);

#endif
