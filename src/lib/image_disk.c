/* An image's disk; see husk/image_disk.h. */
#include "husk/image_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk/layer.h"
#include "husk/reference.h"
#include "husk/rootfs_disk.h"

int husk_image_disk_key(const struct husk_image *img, char *key, size_t cap,
                        struct husk_error *err)
{
	if (img->n_layers == 0)
		return husk_err(err, EINVAL, "image %.19s has no layers",
		                img->id);
	struct husk_sha256 *h = husk_sha256_new();
	if (!h)
		return husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->n_layers; i++) {
		if (i)
			husk_sha256_update(h, " ", 1);
		husk_sha256_update(h, img->layers[i].digest,
		                   strlen(img->layers[i].digest));
	}
	char d[HUSK_DIGEST_MAX];
	int rc = husk_sha256_final(h, d);
	husk_sha256_free(h);
	if (rc < 0)
		return husk_err(err, -rc, "sha256 failed");
	if (snprintf(key, cap, "chain-%s", d + strlen("sha256:")) >= (int)cap)
		return husk_err(err, ENAMETOOLONG, "disk key");
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Applies every layer, base first, onto root. */
static int unpack(struct husk_store *s, const struct husk_image *img,
                  const char *root, struct husk_error *err)
{
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return husk_err_errno(err, errno, "open %s", root);
	/* Without root, device nodes and owners cannot be made: skip what
	 * cannot be, as rootless Docker does. */
	unsigned flags = geteuid() == 0 ? 0
	                                : HUSK_LAYER_SKIP_DEVICES |
	                                      HUSK_LAYER_IGNORE_XATTR_ERRORS;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < img->n_layers; i++) {
		const struct husk_image_layer *l = &img->layers[i];
		int fd = -1;
		rc = husk_store_blob_open(s, l->digest, (int64_t)l->size, false,
		                          &fd, err);
		if (rc < 0)
			break;
		struct husk_layer_stats st;
		rc = husk_layer_apply_fd(rootfd, fd, flags, &st, err);
		close(fd);
		if (rc < 0) {
			struct husk_error inner = *err;
			rc = husk_err(err, inner.code, "layer %zu (%.19s): %s",
			              i + 1, l->digest, inner.msg);
		}
	}
	close(rootfd);
	return rc;
}

int husk_image_disk(struct husk_store *s, const struct husk_image *img,
                    char *out, size_t cap, struct husk_error *err)
{
	char key[80], disks[PATH_MAX], scratch[PATH_MAX];
	int rc = husk_image_disk_key(img, key, sizeof(key), err);
	if (rc < 0)
		return rc;
	const char *root = husk_store_root(s);
	if (snprintf(disks, sizeof(disks), "%s/disks", root) >=
	        (int)sizeof(disks) ||
	    snprintf(scratch, sizeof(scratch), "%s/unpack", root) >=
	        (int)sizeof(scratch))
		return husk_err(err, ENAMETOOLONG, "store path too long");
	/* Cached: nothing to unpack. */
	rc = husk_disk_cached(disks, key, out, cap, err);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (mkdir(scratch, 0700) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "create %s", scratch);
	char tree[PATH_MAX];
	if (snprintf(tree, sizeof(tree), "%s/%s-XXXXXX", scratch, key) >=
	    (int)sizeof(tree))
		return husk_err(err, ENAMETOOLONG, "store path too long");
	if (!mkdtemp(tree))
		return husk_err_errno(err, errno, "create a directory in %s",
		                      scratch);
	chmod(tree, 0755);
	rc = unpack(s, img, tree, err);
	if (rc == 0)
		rc = husk_disk_named(tree, disks, key, out, cap, err);
	nftw(tree, remove_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return rc;
}

int husk_image_rootfs(struct husk_store *s, const struct husk_image *img,
                      char *out, size_t cap, struct husk_error *err)
{
	char key[80], dir[PATH_MAX], scratch[PATH_MAX], tree[PATH_MAX];
	int rc = husk_image_disk_key(img, key, sizeof(key), err);
	if (rc < 0)
		return rc;
	const char *root = husk_store_root(s);
	if (snprintf(dir, sizeof(dir), "%s/rootfs", root) >= (int)sizeof(dir) ||
	    snprintf(scratch, sizeof(scratch), "%s/unpack", root) >=
	        (int)sizeof(scratch) ||
	    snprintf(tree, sizeof(tree), "%s/%s-XXXXXX", scratch, key) >=
	        (int)sizeof(tree) ||
	    snprintf(out, cap, "%s/%s", dir, key) >= (int)cap)
		return husk_err(err, ENAMETOOLONG, "store path too long");
	struct stat st;
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(scratch, 0700) < 0 && errno != EEXIST))
		return husk_err_errno(err, errno, "create %s", dir);
	if (!mkdtemp(tree))
		return husk_err_errno(err, errno, "create a directory in %s",
		                      scratch);
	chmod(tree, 0755);
	rc = unpack(s, img, tree, err);
	/* Another process may have won the race: its tree is as good. */
	if (rc == 0 && rename(tree, out) < 0 && errno != EEXIST &&
	    errno != ENOTEMPTY)
		rc = husk_err_errno(err, errno, "rename into %s", out);
	if (rc < 0 || stat(tree, &st) == 0)
		nftw(tree, remove_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return rc;
}
