/* Internals of `husk load`, shared by its pieces:
 *
 *   image_load.c          the public API: reads the archive, then plans,
 *                         then commits blobs and records images
 *   image_load_archive.c  the entry table: every file of the archive,
 *                         its sha256, its data (in memory or in a store
 *                         blob writer), links followed inside the archive
 *   image_load_json.c     strict JSON from entries, descriptors
 *   image_load_docker.c   manifest.json (docker save) into plans
 *   image_load_oci.c      oci-layout + index.json into plans
 *
 * Reading and planning never change the store (but see "early commit" in
 * include/husk/image_load.h); only load_commit_and_record does. */
#ifndef HUSK_IMAGE_LOAD_INT_H
#define HUSK_IMAGE_LOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "husk/image_load.h"
#include "husk/reference.h"
#include "husk/store.h"

struct archive;

/* Most entries one archive may have, and the longest name kept: they
 * bound the memory a hostile archive of tiny entries can take. */
#define LOAD_ENTRIES_MAX 65536
#define LOAD_NAME_MAX    1024
/* Symlinks followed for one path; indexes nested in indexes. */
#define LOAD_LINK_HOPS   16
#define LOAD_INDEX_DEPTH 4
/* Most layers one image may have: the store's bound, checked while
 * planning so that no image is recorded from an archive it refuses. */
#define LOAD_LAYERS_MAX 4096

enum load_kind {
	LOAD_FILE,
	LOAD_SYMLINK,  /* link: the target as stored, relative to the dir */
	LOAD_HARDLINK, /* link: the target, cleaned, from the archive root */
};

/* One file of the archive. A file's data is in exactly one place: data
 * (small), w (spooled, not committed), or the store (in_store: committed
 * by us, or already there and held in our lease). */
struct load_entry {
	char *name; /* cleaned path inside the archive */
	enum load_kind kind;
	char *link;
	size_t seq; /* archive order: of two entries with one name the
	               later wins, as when a tar is extracted */
	uint64_t size;
	char digest[HUSK_DIGEST_MAX]; /* sha256 of the data */
	unsigned char magic[4];       /* its first bytes, for messages */
	char *data;                   /* NUL-terminated */
	struct husk_blob_writer *w;
	bool in_store;
};

/* One image to record. */
struct load_image {
	char what[64]; /* "manifest.json image 2", for messages */
	char config_digest[HUSK_DIGEST_MAX];
	char manifest_digest[HUSK_DIGEST_MAX]; /* "" for docker archives */
	struct load_entry *config, *manifest;  /* manifest NULL for docker */
	size_t n_layers;
	struct husk_layer_desc *layers;
	struct load_entry **layer_entries;
	size_t n_names;
	struct husk_ref *names;
};

struct load_ctx {
	struct husk_store *s;
	struct husk_error *err;
	struct husk_load_limits lim;
	struct load_entry *e; /* sorted by name once the archive is read */
	size_t n, cap;
	size_t mem_used;
	size_t open_writers;
	size_t spill_next; /* oldest entry that may still hold a writer */
	struct load_image *img;
	size_t n_img, cap_img;
};

/* ---- image_load_archive.c ---- */

/* Reads every entry of a (tar or disk) archive into c's table; for a
 * disk archive, prefix is the directory walked, stripped from names. */
int load_read_archive(struct load_ctx *c, struct archive *a,
                      const char *prefix);
/* The entry named name exactly (no links followed), or NULL. */
struct load_entry *load_find(struct load_ctx *c, const char *name);
/* The file entry at path (relative, no `..`: EINVAL otherwise), links
 * followed; ENOENT naming what when absent. */
int load_resolve(struct load_ctx *c, const char *path, const char *what,
                 struct load_entry **out);
/* The entry blobs/sha256/<hex> for a digest; ENOENT when absent. */
int load_blob(struct load_ctx *c, const char *digest, const char *what,
              struct load_entry **out);
/* Commits an entry's data to the store (no-op when it is there). */
int load_entry_commit(struct load_ctx *c, struct load_entry *e);
void load_entries_free(struct load_ctx *c);

/* ---- image_load_json.c ---- */

/* Parses an entry as strict JSON (at most json_max bytes: EMSGSIZE). */
int load_json(struct load_ctx *c, struct load_entry *e, const char *what,
              json_object **out);
/* The entry's data as text (NUL-terminated), read back from the store
 * when it was spooled. *owned is set when the caller must free it. */
int load_text(struct load_ctx *c, struct load_entry *e, const char *what,
              const char **text, char **owned);
/* Member key of o when present and not null. */
json_object *load_member(json_object *o, const char *key);
/* A string member (NUL bytes refused); NULL *out when absent and not
 * required. */
int load_string(struct load_ctx *c, json_object *o, const char *key,
                bool required, const char *what, const char **out);

struct load_desc {
	const char *media_type; /* "" when absent */
	char digest[HUSK_DIGEST_MAX];
	int64_t size;
	json_object *obj;
};
/* An OCI descriptor: mediaType (optional), digest (sha256 only), size. */
int load_desc_parse(struct load_ctx *c, json_object *o, const char *what,
                    struct load_desc *d);

/* ---- image_load.c ---- */

/* A new plan in c (zeroed, what set). */
int load_image_add(struct load_ctx *c, struct load_image **out, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
/* Adds a name to an image (a tag: no digest); EINVAL when invalid. */
int load_image_name(struct load_ctx *c, struct load_image *img,
                    const char *name, const char *what);
/* Parses img's config (its entry must be set), checks it has one diff_id
 * per layer and that each uncompressed layer's digest is its diff_id,
 * and sets config_digest. */
int load_image_config(struct load_ctx *c, struct load_image *img);

/* ---- image_load_docker.c / image_load_oci.c ---- */

int load_plan_docker(struct load_ctx *c, struct load_entry *manifest);
int load_plan_oci(struct load_ctx *c);

#endif
