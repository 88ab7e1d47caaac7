/* The last steps of a container's process before execve: limits,
 * capabilities, user, seccomp.
 *
 * The order matters, and is this:
 *  1. RLIMIT_NOFILE, while CAP_SYS_RESOURCE still allows raising it.
 *  2. no_new_privs, when asked.
 *  3. The bounding set cut to Docker's default: needs CAP_SETPCAP, which
 *     root still has in full; it limits what execve can ever grant again.
 *  4. Ambient capabilities cleared, so none survives execve by that path.
 *  5. The seccomp filter. Without no_new_privs the kernel accepts a filter
 *     only from a task with CAP_SYS_ADMIN, which a non-root user loses at
 *     setuid (step 6) and even root loses at capset (step 7); so it goes in
 *     now. Everything after it (setgroups, setres[ug]id, capset, prctl,
 *     and the caller's execve) is in the filter's allowlist.
 *  6. setgroups, setresgid, setresuid: groups first, since changing them
 *     needs CAP_SETGID, then gid, then uid last, since leaving uid 0 takes
 *     the capabilities that the other two need. The res* variants set the
 *     real, effective and saved ids alike, so there is no way back.
 *  7. capset with the final sets. Leaving uid 0 without PR_SET_KEEPCAPS
 *     already empties the permitted and effective sets, but setting them
 *     explicitly does not depend on the securebits we inherited. For uid
 *     0, execve would recompute permitted = bounding set anyway; setting it
 *     now means what the process holds before exec is what it holds after.
 *
 * Capabilities go through the raw capget/capset system calls (version 3,
 * two 32-bit words) rather than libcap: the agent is static and this is
 * all it needs. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confine.h"

/* Docker's default capability set, by name; CONFINE_DEFAULT_CAPS must be
 * this list as a mask (checked below). */
#define CAP_BIT(c) (1ULL << (c))
#define DEFAULT_CAPS                                                           \
	(CAP_BIT(CAP_CHOWN) | CAP_BIT(CAP_DAC_OVERRIDE) |                      \
	 CAP_BIT(CAP_FSETID) | CAP_BIT(CAP_FOWNER) | CAP_BIT(CAP_MKNOD) |      \
	 CAP_BIT(CAP_NET_RAW) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETUID) |    \
	 CAP_BIT(CAP_SETFCAP) | CAP_BIT(CAP_SETPCAP) |                         \
	 CAP_BIT(CAP_NET_BIND_SERVICE) | CAP_BIT(CAP_SYS_CHROOT) |             \
	 CAP_BIT(CAP_KILL) | CAP_BIT(CAP_AUDIT_WRITE))
_Static_assert(DEFAULT_CAPS == CONFINE_DEFAULT_CAPS,
               "CONFINE_DEFAULT_CAPS does not match Docker's list");

/* The highest capability any kernel could have: a guard for the bounding
 * set walk, which otherwise stops at the first number the kernel rejects. */
#define CAP_GUARD 63

/* /proc/sys/fs/nr_open, or 0 when it cannot be read (no /proc yet). */
static unsigned long read_nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long v = 0;
	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* Docker's containers start with 1048576 descriptors, soft and hard (the
 * daemon's LimitNOFILE=infinity, which the kernel caps at nr_open). */
static int set_nofile(struct husk_error *err)
{
	rlim_t want = CONFINE_NOFILE;
	unsigned long nr_open = read_nr_open();
	if (nr_open > 0 && nr_open < want)
		want = nr_open;
	struct rlimit rl = {want, want};
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return 0;
	if (errno != EPERM)
		return husk_err_errno(err, errno, "setrlimit NOFILE %lu",
		                      (unsigned long)want);
	/* Without CAP_SYS_RESOURCE (an agent run on a host, as in tests) the
	 * hard limit cannot rise: take all it allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return husk_err_errno(err, errno, "getrlimit NOFILE");
	if (rl.rlim_max > want)
		rl.rlim_max = want;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return husk_err_errno(err, errno, "setrlimit NOFILE %lu",
		                      (unsigned long)rl.rlim_cur);
	return 0;
}

/* Drops every capability outside the default set from the bounding set,
 * up to the last one this kernel knows (PR_CAPBSET_READ fails beyond). */
static int drop_bounding_set(struct husk_error *err)
{
	for (int cap = 0; cap <= CAP_GUARD; cap++) {
		int has = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (has < 0)
			break;
		if (!has || (CONFINE_DEFAULT_CAPS & CAP_BIT(cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return husk_err_errno(err, errno,
			                      "dropping capability %d from the "
			                      "bounding set",
			                      cap);
	}
	return 0;
}

static int clear_ambient(struct husk_error *err)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0)
		return 0;
	if (errno == EINVAL) /* before Linux 4.3 there are none */
		return 0;
	return husk_err_errno(err, errno, "clearing ambient capabilities");
}

static int set_ids(const struct agent_user_cfg *u, struct husk_error *err)
{
	if (u->ngroups > AGENT_MAX_GROUPS)
		return husk_err(err, EINVAL, "%zu supplementary groups",
		                u->ngroups);
	if (setgroups(u->ngroups, u->groups) < 0)
		return husk_err_errno(err, errno, "setgroups");
	if (setresgid(u->gid, u->gid, u->gid) < 0)
		return husk_err_errno(err, errno, "setgid %u",
		                      (unsigned)u->gid);
	if (setresuid(u->uid, u->uid, u->uid) < 0)
		return husk_err_errno(err, errno, "setuid %u",
		                      (unsigned)u->uid);
	return 0;
}

/* effective = permitted = caps, inheritable empty. */
static int set_caps(uint64_t caps, struct husk_error *err)
{
	struct __user_cap_header_struct hdr = {
	    .version = _LINUX_CAPABILITY_VERSION_3,
	    .pid = 0,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};
	data[0].effective = data[0].permitted = (uint32_t)caps;
	data[1].effective = data[1].permitted = (uint32_t)(caps >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return husk_err_errno(err, errno, "capset");
	return 0;
}

int confine_apply(const struct agent_user_cfg *u, bool no_new_privs,
                  struct husk_error *err)
{
	int rc = set_nofile(err);
	if (rc < 0)
		return rc;
	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return husk_err_errno(err, errno, "setting no_new_privs");
	rc = drop_bounding_set(err);
	if (rc == 0)
		rc = clear_ambient(err);
	if (rc == 0)
		rc = confine_seccomp_default(err);
	if (rc == 0)
		rc = set_ids(u, err);
	if (rc == 0)
		rc = set_caps(u->uid == 0 ? CONFINE_DEFAULT_CAPS : 0, err);
	return rc;
}
