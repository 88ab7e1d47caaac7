/* Containers using images: refs/<id-hex>/<container-id>, one empty file
 * each, so that rmi and prune never delete an image under a container.
 * Files, not a counter: a crash cannot leave a count off by one, and the
 * names say who uses the image. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_args(const char *image_id, const char *container_id,
                      struct husk_error *err)
{
	if (!husk_digest_valid(image_id))
		return husk_err(err, EINVAL, "invalid image id '%s'",
		                image_id ? image_id : "(null)");
	size_t n = container_id ? strlen(container_id) : 0;
	bool ok = n > 0 && n <= 128 && strcmp(container_id, ".") != 0 &&
	          strcmp(container_id, "..") != 0;
	for (size_t i = 0; ok && i < n; i++) {
		char c = container_id[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		     (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
	}
	if (!ok)
		return husk_err(err, EINVAL, "invalid container id '%s'",
		                container_id ? container_id : "(null)");
	return 0;
}

static int ref_locked(struct husk_store *s, const char *image_id,
                      const char *container_id, struct husk_error *err)
{
	const char *hex = husk_digest_hex(image_id);
	if (!record_exists(s, image_id))
		return husk_err(err, ENOENT, "no such image: %s", image_id);
	if (mkdirat(s->refs_fd, hex, 0755) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s/refs/%s", s->root,
		                      hex);
	int dir = openat(s->refs_fd, hex, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return husk_err_errno(err, errno, "open %s/refs/%s", s->root,
		                      hex);
	int fd = openat(dir, container_id,
	                O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	int rc = 0;
	if (fd < 0)
		rc = husk_err_errno(err, errno, "record container %s",
		                    container_id);
	else
		close(fd);
	if (rc == 0) {
		fsync(dir);
		fsync(s->refs_fd);
	}
	close(dir);
	return rc;
}

int husk_store_image_ref(struct husk_store *s, const char *image_id,
                         const char *container_id, struct husk_error *err)
{
	int rc = check_args(image_id, container_id, err);
	if (rc == 0)
		rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	rc = ref_locked(s, image_id, container_id, err);
	store_unlock(s);
	return rc;
}

int husk_store_image_unref(struct husk_store *s, const char *image_id,
                           const char *container_id, struct husk_error *err)
{
	int rc = check_args(image_id, container_id, err);
	if (rc == 0)
		rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	const char *hex = husk_digest_hex(image_id);
	int dir = openat(s->refs_fd, hex, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		if (unlinkat(dir, container_id, 0) < 0 && errno != ENOENT)
			rc = husk_err_errno(err, errno, "unrecord container %s",
			                    container_id);
		fsync(dir);
		close(dir);
		/* Fails harmlessly while other containers remain. */
		unlinkat(s->refs_fd, hex, AT_REMOVEDIR);
	}
	store_unlock(s);
	return rc;
}
