/* Small I/O helpers libhusk shares. */
#ifndef HUSK_IO_H
#define HUSK_IO_H

#include <stddef.h>

/* Writes all n bytes, retrying short writes and EINTR, and waiting while
 * a non-blocking fd is full; 0 or -errno. */
int husk_write_all(int fd, const void *buf, size_t n);

#endif
