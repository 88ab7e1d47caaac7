/* The read-only disk of an image: its layers applied in order into a
 * scratch tree, made into one EROFS image, cached and shared by every VM
 * that runs the image. */
#ifndef HUSK_IMAGE_DISK_H
#define HUSK_IMAGE_DISK_H

#include <stddef.h>

#include "husk/error.h"
#include "husk/store.h"

/* Returns in out the path of img's disk, STORE/disks/chain-<hex>.erofs,
 * building it when missing. The key is the chain of the layers' blob
 * digests (sha256 of "D1 D2 ... Dn"), not Docker's chain ID over the
 * config's diff_ids: blob digests are verified when the blobs enter the
 * store, while diff_ids are only claims of the image config, and a disk
 * shared by key must never be served for content it does not hold. */
int husk_image_disk(struct husk_store *s, const struct husk_image *img,
                    char *out, size_t cap, struct husk_error *err);

/* The image's layers unpacked once into STORE/rootfs/<key>, a directory
 * kept for OCI bundles (husk run -d hands it to husk-runtime as
 * root.path). Built in STORE/unpack and renamed into place, so a
 * directory there is always complete. Its path goes to out. */
int husk_image_rootfs(struct husk_store *s, const struct husk_image *img,
                      char *out, size_t cap, struct husk_error *err);

/* The cache key alone ("chain-<64 hex>"), for tests and `husk inspect`. */
int husk_image_disk_key(const struct husk_image *img, char *key, size_t cap,
                        struct husk_error *err);

#endif
