/* Whether a process is still the one we started, across pid reuse. */
#ifndef HUSK_PROC_H
#define HUSK_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The process's start time (field 22 of /proc/PID/stat, in clock ticks
 * since boot), or 0 when it is gone or a zombie. */
uint64_t husk_proc_start_time(pid_t pid);
/* pid is alive and, unless start is 0, started at start. */
bool husk_pid_alive(pid_t pid, uint64_t start);

#endif
