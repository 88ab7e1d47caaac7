/* Docker's default seccomp profile, as our own table.
 *
 * The semantics follow moby's profiles/seccomp/default.json for a container
 * with Docker's default capabilities: every system call not named here
 * fails with EPERM; the ones named are allowed, a few only with some
 * arguments. Calls that Docker allows only together with a capability the
 * default set lacks (CAP_SYS_ADMIN: mount, umount2, unshare, setns, bpf,
 * perf_event_open, fsopen...; CAP_SYS_BOOT: reboot; CAP_SYS_MODULE;
 * CAP_SYS_TIME; CAP_SYS_NICE: mbind...; CAP_SYS_PTRACE: kcmp,
 * pidfd_getfd...; CAP_SYS_RAWIO: iopl, ioperm; CAP_SYS_PACCT: acct;
 * CAP_DAC_READ_SEARCH: open_by_handle_at) are therefore left out, and so
 * are kexec_*, swapon/swapoff, keyctl and friends, userfaultfd and the rest
 * Docker never allows. Like Docker 25 and later, io_uring_* is left out:
 * its rings run I/O the filter never sees, and it has been a steady source
 * of kernel exploits.
 *
 * Names the installed libseccomp does not know are skipped, so one table
 * serves old and new libseccomp (an unknown call then gets EPERM).
 *
 * The filter covers x86_64 with its two compatibility ABIs, i386 and x32,
 * as Docker's does: without them a 32-bit binary would reach the kernel
 * through the other ABI's numbers unfiltered. */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <sys/socket.h>

#include <seccomp.h>

#include "confine.h"

/* Allowed with any arguments. Grouped by what they are for; each group is
 * sorted. The *32, *64 and *_time64 variants are the i386 ABI's spellings
 * of the same calls (libseccomp places each on the ABI that has it). */
static const char *const allowed[] = {
    /* Memory: a process manages its own address space. mlock* is bounded
     * by RLIMIT_MEMLOCK without CAP_IPC_LOCK; pkey_* and mseal only
     * restrict the caller. */
    "brk",
    "cachestat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "mseal",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",

    /* Files and descriptors: everything ordinary I/O needs. mknod stays
     * bounded by CAP_MKNOD and the device cgroup; name_to_handle_at only
     * names (opening a handle needs CAP_DAC_READ_SEARCH). */
    "_llseek",
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "lseek",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "name_to_handle_at",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pipe",
    "pipe2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "sendfile64",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vmsplice",
    "write",
    "writev",

    /* Extended attributes: permission checks stay with the kernel (trusted.*
     * and security.* need capabilities the container lacks). */
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",

    /* Waiting and event descriptors. */
    "_newselect",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "pause",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "signalfd",
    "signalfd4",

    /* Asynchronous I/O, the old kind: it runs only reads, writes and syncs
     * the filter already allows. */
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",

    /* Device control: ioctl reaches only what the container can open. */
    "ioctl",

    /* Sockets (socket itself is below, without AF_VSOCK). socketcall is the
     * i386 multiplexer: its arguments sit in memory the filter cannot
     * read, so it is allowed as Docker allows it. */
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",

    /* System V and POSIX IPC, inside the container's IPC namespace. */
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",

    /* Processes and threads (clone is below, without new namespaces).
     * execve is how the container starts at all. ptrace and
     * process_vm_*: Docker allows them on kernels >= 4.8, where ptrace can
     * no longer be used to slip past seccomp; they stay bounded by the
     * usual same-uid checks, as CAP_SYS_PTRACE is not in the set. */
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "get_robust_list",
    "get_thread_area",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getsid",
    "gettid",
    "pidfd_open",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "restart_syscall",
    "rseq",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setsid",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",

    /* x86 thread-local storage and segments (glibc, Wine, old runtimes). */
    "arch_prctl",
    "modify_ldt",

    /* Signals. */
    "kill",
    "pidfd_send_signal",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",

    /* Futexes: every lock in every libc. */
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",

    /* Identity and capabilities: what a process may do with them is the
     * kernel's business (CAP_SETUID, CAP_SETGID, CAP_SETPCAP); this agent
     * needs setgroups, setres[ug]id and capset after the filter is in. */
    "capget",
    "capset",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getuid",
    "getuid32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",

    /* Self-restriction: a process may always narrow itself further.
     * prctl's dangerous options need capabilities. */
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "prctl",
    "seccomp",

    /* Limits, priorities and scheduling: raising any of them needs
     * CAP_SYS_RESOURCE or CAP_SYS_NICE, which the container lacks. */
    "getpriority",
    "getrlimit",
    "getrusage",
    "ioprio_get",
    "ioprio_set",
    "prlimit64",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "setpriority",
    "setrlimit",
    "ugetrlimit",

    /* Time and timers. adjtimex and clock_adjtime read the clock; setting
     * it needs CAP_SYS_TIME (settimeofday and clock_settime stay out). */
    "adjtimex",
    "alarm",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",

    /* Information about the machine. */
    "getcpu",
    "getrandom",
    "sysinfo",
    "uname",

    /* chroot: Docker allows it with CAP_SYS_CHROOT, which is in the
     * default set. */
    "chroot",
};

/* Namespace flags clone must not carry: creating namespaces is what
 * CAP_SYS_ADMIN (absent) would be needed for, and a user namespace would
 * hand the container a fresh full set of capabilities to attack the
 * kernel with. */
#define CLONE_NS_FLAGS                                                         \
	((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |            \
	                CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |          \
	                CLONE_NEWCGROUP))

/* personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
 * PER_LINUX32|UNAME26, and 0xffffffff (query). Other flags such as
 * ADDR_NO_RANDOMIZE or READ_IMPLIES_EXEC weaken the process. */
static const scmp_datum_t personalities[] = {0x0, 0x8, 0x20000, 0x20008,
                                             0xffffffff};

/* Adds one rule; a name libseccomp does not know is skipped. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
                    unsigned int nargs, const struct scmp_arg_cmp *args,
                    struct husk_error *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0;
	int rc = seccomp_rule_add_array(ctx, action, nr, nargs, args);
	if (rc < 0)
		return husk_err_errno(err, -rc, "seccomp: adding a rule for %s",
		                      name);
	return 0;
}

static int add_allowed(scmp_filter_ctx ctx, struct husk_error *err)
{
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int rc =
		    add_rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The calls allowed only with some arguments, and clone3. */
static int add_conditional(scmp_filter_ctx ctx, struct husk_error *err)
{
	int rc;
	for (size_t i = 0; i < sizeof(personalities) / sizeof(personalities[0]);
	     i++) {
		struct scmp_arg_cmp eq = SCMP_A0(SCMP_CMP_EQ, personalities[i]);
		rc = add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &eq, err);
		if (rc < 0)
			return rc;
	}

	struct scmp_arg_cmp no_ns =
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0);
	rc = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_ns, err);
	if (rc < 0)
		return rc;

	/* clone3 passes its flags in memory the filter cannot read, so it
	 * cannot be checked like clone: ENOSYS makes libc fall back to
	 * clone, which can. */
	rc = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err);
	if (rc < 0)
		return rc;

	/* Any socket but AF_VSOCK: in a microVM vsock leads to the host, and
	 * the container has no business there (Docker blocks it too). On
	 * i386, socketcall hides the family from the filter. */
	struct scmp_arg_cmp not_vsock = SCMP_A0(SCMP_CMP_NE, AF_VSOCK);
	return add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &not_vsock, err);
}

/* The native ABI is always in a new filter; add its compatibility ABIs. */
static int add_arches(scmp_filter_ctx ctx, struct husk_error *err)
{
	static const uint32_t x86_64_compat[] = {SCMP_ARCH_X86, SCMP_ARCH_X32};
	static const uint32_t aarch64_compat[] = {SCMP_ARCH_ARM};
	const uint32_t *compat = NULL;
	size_t n = 0;

	uint32_t native = seccomp_arch_native();
	if (native == SCMP_ARCH_X86_64) {
		compat = x86_64_compat;
		n = sizeof(x86_64_compat) / sizeof(x86_64_compat[0]);
	} else if (native == SCMP_ARCH_AARCH64) {
		compat = aarch64_compat;
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_arch_add(ctx, compat[i]);
		if (rc < 0 && rc != -EEXIST)
			return husk_err_errno(err, -rc,
			                      "seccomp: adding architecture %u",
			                      (unsigned)compat[i]);
	}
	return 0;
}

static int build_filter(scmp_filter_ctx ctx, struct husk_error *err)
{
	/* no_new_privs is confine_apply's decision (Docker sets it only
	 * with --security-opt no-new-privileges: it would defeat setuid
	 * binaries such as su and ping), so libseccomp must not set it
	 * behind our back; without it, loading needs CAP_SYS_ADMIN. */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0)
		return husk_err_errno(err, -rc, "seccomp: clearing CTL_NNP");
	/* A binary tree rather than a linear list of ~350 comparisons
	 * makes every system call of the container cheaper. Older
	 * libseccomp lacks the attribute; the filter is the same without. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

	rc = add_arches(ctx, err);
	if (rc == 0)
		rc = add_allowed(ctx, err);
	if (rc == 0)
		rc = add_conditional(ctx, err);
	return rc;
}

int confine_seccomp_default(struct husk_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return husk_err(err, ENOMEM, "seccomp: cannot create a filter");
	int rc = build_filter(ctx, err);
	if (rc == 0) {
		rc = seccomp_load(ctx);
		if (rc < 0)
			rc = husk_err_errno(
			    err, -rc,
			    "seccomp: loading the default profile "
			    "(needs CAP_SYS_ADMIN or "
			    "no_new_privs)");
	}
	seccomp_release(ctx);
	return rc;
}
