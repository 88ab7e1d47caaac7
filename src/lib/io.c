/* Small I/O helpers; see husk/io.h. */
#include "husk/io.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

int husk_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		/* A descriptor may be non-blocking because its open file is
		 * shared with a reader that wants it so (a terminal used as
		 * stdin and stdout): wait until it takes more. */
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {fd, POLLOUT, 0};
			if (poll(&pf, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
