/* See husk/proc.h. Records of long-lived processes (a runtime's
 * supervisor) keep the pid and its start time: after a crash or kill -9
 * the pid may belong to someone else, and only the pair tells. */
#include "husk/proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t husk_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* after "(comm)", which may hold spaces: state is field 3, start
	 * time field 22 */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	if (p[2] == 'Z' || p[2] == 'X')
		return 0; /* exited, waiting to be reaped */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

bool husk_pid_alive(pid_t pid, uint64_t start)
{
	if (pid <= 0)
		return false;
	uint64_t now = husk_proc_start_time(pid);
	return now && (!start || now == start);
}
