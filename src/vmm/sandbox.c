#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

struct rule {
	int nr;
	const char *why;
};

/* Every syscall a running husk-vmm makes, and why. Anything else traps
 * (SIGSYS): the handler names the syscall and the process ends. */
static const struct rule allowed[] = {
    {SCMP_SYS(read), "console sockets, eventfds, signalfd"},
    {SCMP_SYS(write), "serial output, console sockets, eventfds, irqfds"},
    {SCMP_SYS(readv), "virtio-blk reads into guest buffers"},
    {SCMP_SYS(writev), "virtio-blk writes from guest buffers"},
    {SCMP_SYS(pread64), "virtio-blk"},
    {SCMP_SYS(pwrite64), "virtio-blk"},
    {SCMP_SYS(preadv), "virtio-blk"},
    {SCMP_SYS(pwritev), "virtio-blk"},
    {SCMP_SYS(fdatasync), "virtio-blk flush"},
    {SCMP_SYS(fsync), "virtio-blk flush"},
    {SCMP_SYS(lseek), "virtio-blk"},
    {SCMP_SYS(getrandom), "virtio-rng"},
    {SCMP_SYS(epoll_wait), "main loop"},
    {SCMP_SYS(epoll_pwait), "main loop"},
    {SCMP_SYS(epoll_ctl), "main loop: console peers come and go"},
    {SCMP_SYS(accept4), "console ports and the control socket"},
    {SCMP_SYS(poll), "control socket: read a command with a limit; the "
                     "network thread's loop"},
    {SCMP_SYS(close), "console peers leave; teardown"},
    {SCMP_SYS(unlink), "console socket removed at teardown"},
    {SCMP_SYS(futex), "device locks, thread join"},
    {SCMP_SYS(rt_sigreturn), "return from the vCPU kick handler"},
    {SCMP_SYS(rt_sigprocmask), "thread start and exit"},
    {SCMP_SYS(tgkill), "kick vCPU threads out of KVM_RUN"},
    {SCMP_SYS(getpid), "tgkill"},
    {SCMP_SYS(gettid), "tgkill"},
    {SCMP_SYS(munmap), "free() of large blocks, teardown"},
    {SCMP_SYS(madvise), "free() returns memory; thread exit"},
    {SCMP_SYS(brk), "malloc"},
    {SCMP_SYS(exit), "vCPU thread ends"},
    {SCMP_SYS(exit_group), "husk-vmm ends"},
    {SCMP_SYS(clock_gettime), "timestamps, when the vDSO is not used"},
    {SCMP_SYS(fstat), "stdio's first use of stderr"},
    {SCMP_SYS(newfstatat), "stdio's first use of stderr"},
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitizer builds only (tests): ASan's allocator and reports. */
    {SCMP_SYS(sched_yield), "ASan"},
    {SCMP_SYS(sigaltstack), "ASan"},
    {SCMP_SYS(rt_sigaction), "ASan"},
    {SCMP_SYS(open), "ASan reports"},
    {SCMP_SYS(openat), "ASan reports"},
    {SCMP_SYS(readlink), "ASan reports"},
    {SCMP_SYS(getppid), "ASan"},
    {SCMP_SYS(sched_getaffinity), "ASan"},
    {SCMP_SYS(getrlimit), "ASan"},
    {SCMP_SYS(prlimit64), "ASan"},
#endif
};

/* ioctl only on these requests: the vCPU loop, the serial IRQ line,
 * register dumps after a guest crash, and isatty() in stdio. */
static const unsigned long allowed_ioctls[] = {
    KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS, TCGETS,
};

/* The user-mode network (libslirp, only with --net user): it NATs the
 * guest's connections through ordinary host sockets that it opens, polls
 * and closes while the guest runs. Sockets are AF_INET only (no IPv6,
 * no unix or netlink sockets). */
static const struct rule net_allowed[] = {
    {SCMP_SYS(connect), "slirp: outbound TCP and UDP for the guest"},
    {SCMP_SYS(accept), "slirp: a connection to a published port"},
    {SCMP_SYS(sendto), "slirp: send() on TCP, UDP datagrams"},
    {SCMP_SYS(recvfrom), "slirp: recv() on TCP, UDP and ping replies"},
    {SCMP_SYS(sendmsg), "slirp: UDP"},
    {SCMP_SYS(recvmsg), "slirp: UDP errors"},
    {SCMP_SYS(setsockopt), "slirp: SO_REUSEADDR, TCP_NODELAY, buffers"},
    {SCMP_SYS(getsockopt), "slirp: SO_ERROR after a non-blocking connect"},
    {SCMP_SYS(getsockname), "slirp: the local end of forwarded sockets"},
    {SCMP_SYS(getpeername), "slirp: the peer of forwarded sockets"},
    {SCMP_SYS(shutdown), "slirp: a TCP half-close from either side"},
    {SCMP_SYS(fcntl), "slirp: O_NONBLOCK on new sockets"},
};
static const unsigned long net_ioctls[] = {
    FIONREAD, /* slirp: the size of a waiting UDP datagram */
    FIONBIO,  /* slirp: non-blocking sockets on some paths */
};
static bool allow_net;

void sandbox_allow_net(void)
{
	allow_net = true;
}

/* The rules of net_allowed[] and friends. */
static int add_net_rules(scmp_filter_ctx ctx)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	                          SCMP_A0(SCMP_CMP_EQ, AF_INET));
	for (size_t i = 0;
	     rc == 0 && i < sizeof(net_allowed) / sizeof(net_allowed[0]); i++)
		rc =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, net_allowed[i].nr, 0);
	for (size_t i = 0;
	     rc == 0 && i < sizeof(net_ioctls) / sizeof(net_ioctls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                      SCMP_A1(SCMP_CMP_EQ, net_ioctls[i]));
	/* DNS forwarding: libslirp reads /etc/resolv.conf again when it has
	 * changed (to follow the host's resolvers). Read-only opens only. */
	if (rc == 0)
		rc = seccomp_rule_add(
		    ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ,
		            O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND,
		            O_RDONLY));
	return rc;
}

/* The 9P file server (virtio-9p, only with --share): it resolves names
 * in the shared directories and reads and changes files there while the
 * guest runs (see p9/p9_fs.h for how each name stays inside its share).
 * No plain open/openat: every lookup is openat2 with RESOLVE_BENEATH. */
static const struct rule p9_allowed[] = {
    {SCMP_SYS(openat2), "9p: confined lookups and opens"},
    {SCMP_SYS(mkdirat), "9p: Tmkdir"},
    {SCMP_SYS(symlinkat), "9p: Tsymlink"},
    {SCMP_SYS(mknodat), "9p: Tmknod (FIFOs, sockets)"},
    {SCMP_SYS(linkat), "9p: Tlink"},
    {SCMP_SYS(renameat), "9p: Trename, Trenameat"},
    {SCMP_SYS(renameat2), "9p: renameat on newer libcs"},
    {SCMP_SYS(unlinkat), "9p: Tunlinkat, Tremove"},
    {SCMP_SYS(readlinkat), "9p: Treadlink"},
    {SCMP_SYS(fchmod), "9p: Tsetattr mode, exact modes on create"},
    {SCMP_SYS(fchownat), "9p: Tsetattr owner, owner on create"},
    {SCMP_SYS(utimensat), "9p: Tsetattr times"},
    {SCMP_SYS(ftruncate), "9p: Tsetattr size, O_TRUNC"},
    {SCMP_SYS(getdents64), "9p: Treaddir"},
    {SCMP_SYS(fstatfs), "9p: Tstatfs"},
};
static bool allow_p9;

void sandbox_allow_p9(void)
{
	allow_p9 = true;
}

/* The rules of p9_allowed[], and fcntl for the requests it uses only. */
static int add_p9_rules(scmp_filter_ctx ctx)
{
	static const int fcntl_cmds[] = {F_DUPFD_CLOEXEC, F_GETFL, F_SETFL};
	int rc = 0;
	for (size_t i = 0;
	     rc == 0 && i < sizeof(p9_allowed) / sizeof(p9_allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, p9_allowed[i].nr, 0);
	/* 9p: fids are duplicated descriptors (F_DUPFD_CLOEXEC); a reopened
	 * file drops the O_NONBLOCK it was opened with (p9_reopen). */
	for (size_t i = 0;
	     rc == 0 && i < sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
		                      SCMP_A1(SCMP_CMP_EQ, fcntl_cmds[i]));
	return rc;
}

static bool sandboxed;

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's exit-time check stops the world with ptrace from a
 * cloned tracer, which the sandbox rightly forbids: a sandboxed husk-vmm
 * skips it. Leaks are checked in the unit tests, which run unsandboxed. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return sandboxed;
}
#endif

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)ctx;
	char msg[80] = "husk-vmm: seccomp: blocked syscall ";
	size_t len = strlen(msg);
	int nr = info->si_syscall;
	char digits[12];
	int n = 0;
	do
		digits[n++] = (char)('0' + nr % 10);
	while ((nr /= 10) && n < 11);
	while (n)
		msg[len++] = digits[--n];
	msg[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, msg, len);
	(void)w;
	_exit(1);
}

int sandbox_enter(struct husk_error *err)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys,
	                       .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return husk_err_errno(err, errno, "sigaction SIGSYS");
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return husk_err(err, ENOMEM, "seccomp_init");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	/* All threads, including vCPU threads started later. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i].nr, 0);
	for (size_t i = 0;
	     rc == 0 && i < sizeof(allowed_ioctls) / sizeof(allowed_ioctls[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                      SCMP_A1(SCMP_CMP_EQ, allowed_ioctls[i]));
	if (rc == 0 && allow_net)
		rc = add_net_rules(ctx);
	if (rc == 0 && allow_p9)
		rc = add_p9_rules(ctx);
	/* malloc in a vCPU thread may create or grow an arena: mmap and
	 * mprotect, but never executable memory. */
	if (rc == 0)
		rc =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
		                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
		                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return husk_err(err, -rc, "seccomp: %s", strerror(-rc));
	sandboxed = true;
	return 0;
}
