/* Internals shared by the store_*.c files; the layout and the locking
 * rules are described in include/husk/store.h. */
#ifndef HUSK_STORE_INT_H
#define HUSK_STORE_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "husk/store.h"

/* Room for the names of files in tmp/, leases/ (pid and random digits)
 * and partial/ (64 hex digits). */
#define STORE_NAME_MAX 80
/* The most layers one image may have (Docker stops at 127; OCI sets no
 * limit, this only bounds memory). */
#define STORE_MAX_LAYERS 4096
/* Largest metadata file read (records, repositories.json, configs). */
#define STORE_META_MAX (64u << 20)

struct husk_store {
	char root[PATH_MAX];
	int root_fd, lock_fd;
	int blobs_fd, tmp_fd, partial_fd, images_fd, refs_fd, leases_fd;
	int lock_depth;
	int lease_fd; /* -1 until this handle first holds a blob */
	char lease_name[STORE_NAME_MAX];
};

/* store.c: the global lock (nests), files and directories. */
int store_lock(struct husk_store *s, struct husk_error *err);
void store_unlock(struct husk_store *s);
void store_random_name(const char *prefix, char out[STORE_NAME_MAX]);
/* Creates tmp/<random>, flocked by the caller for as long as fd is open,
 * so cleanup never removes it. */
int store_tmp_create(struct husk_store *s, char name[STORE_NAME_MAX], int *fd,
                     struct husk_error *err);
/* True when fd (just flocked) is still the file at dirfd/name: a cleanup
 * may have unlinked it between open and flock. */
bool store_still_linked(int dirfd, const char *name, int fd);
/* Writes data to dirfd/name through tmp/: fsync, rename, fsync dir. */
int store_write_atomic(struct husk_store *s, int dirfd, const char *name,
                       const char *data, size_t len, struct husk_error *err);
/* Reads dirfd/name (at most STORE_META_MAX) into a NUL-terminated
 * malloc'd buffer; -ENOENT without a message when absent. */
int store_read_file(int dirfd, const char *name, char **data, size_t *len,
                    struct husk_error *err);
#include "husk/io.h"
#define store_write_all husk_write_all
/* "sha256:<name>" into out when name is 64 lowercase hex digits. */
bool store_digest_of_name(const char *name, char out[HUSK_DIGEST_MAX]);
/* Removes every file in dirfd that no one holds a flock on. */
void store_clean_unlocked(int dirfd, size_t *removed);

/* A sorted set of digests. */
struct dset {
	char (*v)[HUSK_DIGEST_MAX];
	size_t n, cap;
	bool sorted;
};
int dset_add(struct dset *d, const char *digest);
bool dset_has(struct dset *d, const char *digest);
void dset_free(struct dset *d);

/* store_lease.c: blobs a live handle keeps from GC (under the lock). */
int store_lease_add(struct husk_store *s, const char *digest,
                    struct husk_error *err);
int store_lease_drop(struct husk_store *s, const struct dset *done,
                     struct husk_error *err);
/* Adds every live lease's digests to roots; removes dead leases. */
int store_leases_collect(struct husk_store *s, struct dset *roots,
                         struct husk_error *err);
void store_lease_close(struct husk_store *s);

/* store_repos.c: repositories.json, references -> image id. */
struct repo_entry {
	char *ref; /* full normalised reference */
	char id[HUSK_DIGEST_MAX];
};
struct repos {
	struct repo_entry *e;
	size_t n, cap;
};
int repos_load(struct husk_store *s, struct repos *r, struct husk_error *err);
int repos_save(struct husk_store *s, const struct repos *r,
               struct husk_error *err);
void repos_free(struct repos *r);
struct repo_entry *repos_find(struct repos *r, const char *ref);
int repos_set(struct repos *r, const char *ref, const char *id);
void repos_remove(struct repos *r, const char *ref);
size_t repos_count_for(const struct repos *r, const char *id);
/* Fills img->refs with the references to img->id. */
int repos_refs_of(const struct repos *r, struct husk_image *img);

/* store_record.c: images/<hex>.json. */
int record_load(struct husk_store *s, const char *id, struct husk_image *img,
                struct husk_error *err);
int record_save(struct husk_store *s, const struct husk_image *img,
                struct husk_error *err);
int record_delete(struct husk_store *s, const char *id, struct husk_error *err);
bool record_exists(struct husk_store *s, const char *id);
/* Every recorded image id. */
int record_ids(struct husk_store *s, struct dset *ids, struct husk_error *err);
/* Number of containers using id; the first one's id into first (may be
 * NULL, 129 bytes). */
size_t users_count(struct husk_store *s, const char *id, char *first);

/* store_image.c: how husk_store_image_get reads its argument. */
struct resolved {
	char id[HUSK_DIGEST_MAX];
	char ref[HUSK_REF_STRING_MAX]; /* the reference matched, "" by id */
};
int store_resolve(struct husk_store *s, struct repos *r, const char *what,
                  struct resolved *res, struct husk_error *err);

/* store_gc.c */
int store_gc(struct husk_store *s, struct husk_prune_result *res,
             struct husk_error *err);
int store_image_load(struct husk_store *s, const struct repos *r,
                     const char *id, struct husk_image *img,
                     struct husk_error *err);

#endif
