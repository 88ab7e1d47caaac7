/* Why a VM went away: the VMM's wait status and the last lines it and the
 * guest wrote. A front end (husk run, the runtime's supervisor) adds this
 * to "the agent went away", which alone says nothing about a guest that
 * panicked, a VMM that failed or one the OOM killer took. */
#include "husk/vm_backend.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

int husk_log_tail(const char *path, int nlines, const char *sep, char *out,
                  size_t cap)
{
	enum { MAX_LINES = 16, LINE = 256 };
	if (cap)
		out[0] = '\0';
	if (nlines > MAX_LINES)
		nlines = MAX_LINES;
	FILE *f = fopen(path, "re");
	if (!f || nlines <= 0 || !cap) {
		if (f)
			fclose(f);
		return 0;
	}
	char lines[MAX_LINES][LINE];
	int n = 0;
	char buf[LINE];
	while (fgets(buf, sizeof(buf), f)) {
		size_t len = strcspn(buf, "\r\n");
		if (!buf[len] && !feof(f)) {
			/* the rest of an over-long line: skip it */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
		buf[len] = '\0';
		if (!len)
			continue;
		snprintf(lines[n % nlines], LINE, "%s", buf);
		n++;
	}
	fclose(f);
	size_t used = 0;
	int shown = 0;
	for (int i = n > nlines ? n - nlines : 0; i < n && used + 1 < cap;
	     i++) {
		int w = snprintf(out + used, cap - used, "%s%s",
		                 shown ? sep : "", lines[i % nlines]);
		if (w < 0)
			break;
		used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
		shown++;
	}
	return shown;
}

bool husk_vm_reap_within(struct husk_vm *vm, int wait_ms, int *status)
{
	for (int waited = 0;; waited += 20) {
		pid_t r = waitpid(vm->pid, status, WNOHANG);
		if (r == vm->pid) {
			vm->pid = -1;
			return true;
		}
		if ((r < 0 && errno != EINTR) || waited >= wait_ms)
			return false;
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
	}
}

void husk_vm_end(struct husk_vm *vm, int grace_ms)
{
	int st;
	if (vm->pid <= 0 || husk_vm_reap_within(vm, grace_ms, &st))
		return;
	kill(vm->pid, SIGKILL);
	while (waitpid(vm->pid, &st, 0) < 0 && errno == EINTR)
		;
	vm->pid = -1;
}

void husk_vm_describe_end(struct husk_vm *vm, const char *run_dir, int wait_ms,
                          char *out, size_t cap)
{
	if (!cap)
		return;
	out[0] = '\0';
	size_t used = 0;
#define ADD(...)                                                               \
	do {                                                                   \
		int w_ = snprintf(out + used, cap - used, __VA_ARGS__);        \
		if (w_ > 0)                                                    \
			used += (size_t)w_ < cap - used ? (size_t)w_           \
			                                : cap - used - 1;      \
	} while (0)
	int st = 0;
	if (vm->pid <= 0)
		ADD("the VMM had ended");
	else if (!husk_vm_reap_within(vm, wait_ms, &st))
		ADD("the VMM (pid %d) still runs", (int)vm->pid);
	else if (WIFSIGNALED(st))
		ADD("the VMM was killed by signal %d (%s)", WTERMSIG(st),
		    sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st))
		                               : "?");
	else
		ADD("the VMM exited with status %d", WEXITSTATUS(st));
	char tail[768], path[4096 + 16];
	snprintf(path, sizeof(path), "%s/%s", run_dir, HUSK_VM_VMM_LOG);
	if (husk_log_tail(path, 2, " | ", tail, sizeof(tail)))
		ADD("; VMM: %s", tail);
	snprintf(path, sizeof(path), "%s/%s", run_dir, HUSK_VM_CONSOLE_LOG);
	if (husk_log_tail(path, 3, " | ", tail, sizeof(tail)))
		ADD("; guest console: %s", tail);
#undef ADD
}
