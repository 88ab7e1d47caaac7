/* husk-agent: which disk holds the image. The host names it by the
 * serial it gave the virtio-blk device, since the order of /dev/vd* is
 * not something to rely on. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs.h"

/* virtio-blk's serial field (VIRTIO_BLK_ID_BYTES). */
#define SERIAL_MAX 20

/* Reads /sys/block/NAME/serial without its trailing newline, if any. */
static bool read_serial(const char *sys_block, const char *name, char *buf,
                        size_t cap)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s/serial", sys_block, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t len = read(fd, buf, cap - 1);
	close(fd);
	if (len < 0)
		return false;
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	return true;
}

static int copy_out(char *out, size_t cap, const char *s,
                    struct husk_error *err)
{
	int n = snprintf(out, cap, "%s", s);
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG, "device path %s is too long",
		                s);
	return 0;
}

static int device_for(const char *dev_dir, const char *disk, const char *name,
                      char *out, size_t cap, struct husk_error *err)
{
	char dev[PATH_MAX];
	int n = snprintf(dev, sizeof(dev), "%s/%s", dev_dir, disk);
	if (n < 0 || (size_t)n >= sizeof(dev))
		return husk_err(err, ENAMETOOLONG, "device path too long");
	struct stat st;
	if (stat(dev, &st) != 0)
		return husk_err_errno(err, errno,
		                      "disk with serial '%s' is %s, but %s "
		                      "(is devtmpfs mounted?)",
		                      name, disk, dev);
	return copy_out(out, cap, dev, err);
}

static int find_by_serial(const char *sys_block, const char *dev_dir,
                          const char *name, char *out, size_t cap,
                          struct husk_error *err)
{
	size_t len = strlen(name);
	if (len == 0 || len > SERIAL_MAX)
		return husk_err(err, EINVAL,
		                "disk serial '%s' must be 1 to %d bytes", name,
		                SERIAL_MAX);
	DIR *d = opendir(sys_block);
	if (!d)
		return husk_err_errno(err, errno, "open %s", sys_block);
	char serial[64];
	const struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vd", 2) != 0)
			continue;
		if (!read_serial(sys_block, de->d_name, serial,
		                 sizeof(serial)) ||
		    strcmp(serial, name) != 0)
			continue;
		int r = device_for(dev_dir, de->d_name, name, out, cap, err);
		closedir(d);
		return r;
	}
	closedir(d);
	return husk_err(
	    err, ENOENT,
	    "no virtio disk has serial '%s' (looked at %s/vd*/serial)", name,
	    sys_block);
}

int rootfs_find_device_in(const char *sys_block, const char *dev_dir,
                          const char *spec, char *out, size_t cap,
                          struct husk_error *err)
{
	if (spec[0] == '/') {
		struct stat st;
		if (stat(spec, &st) != 0)
			return husk_err_errno(err, errno, "root device %s",
			                      spec);
		return copy_out(out, cap, spec, err);
	}
	if (strncmp(spec, "serial:", 7) == 0)
		return find_by_serial(sys_block, dev_dir, spec + 7, out, cap,
		                      err);
	return husk_err(err, EINVAL,
	                "root device '%s': expected a path or serial:NAME",
	                spec);
}

int rootfs_find_device(const char *spec, char *out, size_t cap,
                       struct husk_error *err)
{
	return rootfs_find_device_in("/sys/block", "/dev", spec, out, cap, err);
}
