/* The fid table; see p9_fid.h. */
#include "p9_fid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p9_proto.h"

static unsigned hash(uint32_t id)
{
	return (id * 2654435761u) >> 24; /* 0..255 */
}

struct p9_fid *p9_fid_get(struct p9_fids *t, uint32_t id)
{
	for (struct p9_fid *f = t->bucket[hash(id)]; f; f = f->next)
		if (f->id == id)
			return f;
	return NULL;
}

struct p9_fid *p9_fid_add(struct p9_fids *t, uint32_t id, int *e)
{
	if (id == P9_NOFID || p9_fid_get(t, id)) {
		*e = EBADF;
		return NULL;
	}
	if (t->n >= P9_MAX_FIDS) {
		*e = EMFILE;
		return NULL;
	}
	struct p9_fid *f = calloc(1, sizeof(*f));
	if (!f) {
		*e = ENOMEM;
		return NULL;
	}
	f->id = id;
	f->fd = f->parent = f->io_fd = -1;
	f->uid = (uint32_t)-1;
	unsigned h = hash(id);
	f->next = t->bucket[h];
	t->bucket[h] = f;
	t->n++;
	return f;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void p9_fid_close(struct p9_fid *f)
{
	close_fd(&f->fd);
	close_fd(&f->parent);
	close_fd(&f->io_fd);
	free(f->name);
	f->name = NULL;
}

bool p9_fid_remove(struct p9_fids *t, uint32_t id)
{
	for (struct p9_fid **pp = &t->bucket[hash(id)]; *pp;
	     pp = &(*pp)->next) {
		struct p9_fid *f = *pp;
		if (f->id != id)
			continue;
		*pp = f->next;
		p9_fid_close(f);
		free(f);
		t->n--;
		return true;
	}
	return false;
}

void p9_fid_clear(struct p9_fids *t)
{
	for (unsigned i = 0; i < P9_FID_BUCKETS; i++) {
		while (t->bucket[i]) {
			struct p9_fid *f = t->bucket[i];
			t->bucket[i] = f->next;
			p9_fid_close(f);
			free(f);
		}
	}
	t->n = 0;
}

void p9_fid_renamed(struct p9_fids *t, dev_t odev, ino_t oino,
                    const char *oldname, int newdir, const char *newname)
{
	struct stat st;
	if (fstat(newdir, &st) < 0)
		return;
	for (unsigned i = 0; i < P9_FID_BUCKETS; i++) {
		for (struct p9_fid *f = t->bucket[i]; f; f = f->next) {
			if (!f->name || f->parent_dev != odev ||
			    f->parent_ino != oino || strcmp(f->name, oldname))
				continue;
			/* On failure the fid keeps its old place; reopening
			 * it then fails (ESTALE), nothing worse. */
			int fd = fcntl(newdir, F_DUPFD_CLOEXEC, 0);
			char *name = strdup(newname);
			if (fd < 0 || !name) {
				if (fd >= 0)
					close(fd);
				free(name);
				continue;
			}
			close(f->parent);
			free(f->name);
			f->parent = fd;
			f->name = name;
			f->parent_dev = st.st_dev;
			f->parent_ino = st.st_ino;
		}
	}
}
