#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm.h"

static const char usage[] =
    "usage: husk-vmm --kernel PATH [options]\n"
    "  --kernel PATH          vmlinux (ELF) or bzImage\n"
    "  --initrd PATH          initramfs\n"
    "  --cmdline STRING       kernel command line (default: "
    "\"" VMM_DEFAULT_CMDLINE "\")\n"
    "  --memory MIB           guest RAM (default 256)\n"
    "  --cpus N               vCPUs, 1..32 (default 1)\n"
    "  --disk PATH[,ro][,serial=ID]  virtio-blk disk (repeatable)\n"
    "  --port NAME=unix:PATH|NAME=fd:N  virtio-console port (repeatable)\n"
    "  --rng                  virtio-rng\n"
    "  --net none|user[,hostfwd=tcp|udp:[HOSTIP]:PORT-[GUESTIP]:PORT]...\n"
    "                         virtio-net with a user-mode network (default "
    "none)\n"
    "  --net tap[,ifname=NAME][,bridge=BR][,mac=MAC] | tap,fd=N[,mac=MAC]\n"
    "                         virtio-net on a host tap (made, brought up and\n"
    "                         bridged here; needs CAP_NET_ADMIN), or an\n"
    "                         inherited tap descriptor\n"
    "  --share TAG=DIR[,ro]   share a host directory over virtio-9p "
    "(repeatable)\n"
    "  --serial-log PATH      serial console to a file (default stdout)\n"
    "  --control PATH         control socket\n"
    "  --no-seccomp           do not sandbox (debugging only)\n"
    "  --debug                log more\n"
    "exit status: 0 poweroff, 1 husk-vmm error, 2 guest reboot, 3 triple\n"
    "fault, 4 guest crash, 5 no usable KVM, 6 stopped on request\n";

static int parse_uint(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	/* A digit first: strtoull would also skip leading white space and
	 * take a sign after it, so " -18446744073709551615" read as 1. */
	if (s[0] < '0' || s[0] > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_disk(char *arg, struct vmm_disk *d, struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	char *save = NULL;
	/* strtok_r skips leading commas: ",ro" would be the path "ro". */
	char *tok = arg[0] == ',' ? NULL : strtok_r(arg, ",", &save);
	if (!tok || !tok[0])
		return husk_err(err, EINVAL, "--disk needs a path");
	d->path = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strcmp(tok, "ro"))
			d->read_only = true;
		else if (!strncmp(tok, "serial=", 7) && strlen(tok + 7) <= 20)
			d->serial = tok + 7;
		else
			return husk_err(err, EINVAL,
			                "--disk: unknown or bad option '%s'",
			                tok);
	}
	return 0;
}

static int parse_port(char *arg, struct vmm_port *p, struct husk_error *err)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return husk_err(err, EINVAL,
		                "--port wants NAME=unix:PATH or NAME=fd:N, not "
		                "'%s'",
		                arg);
	*eq = '\0';
	p->name = arg;
	for (const char *c = p->name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
		      *c == '_'))
			return husk_err(
			    err, EINVAL,
			    "--port name '%s': use letters, digits, "
			    ". - _",
			    p->name);
	}
	if (strlen(p->name) > 64)
		return husk_err(err, EINVAL, "--port name longer than 64");
	const char *target = eq + 1;
	unsigned long long fd;
	p->fd = -1;
	p->socket = NULL;
	if (!strncmp(target, "unix:", 5) && target[5]) {
		p->socket = target + 5;
	} else if (!strncmp(target, "fd:", 3) &&
	           parse_uint(target + 3, 0, INT_MAX, &fd) == 0) {
		p->fd = (int)fd;
	} else {
		return husk_err(err, EINVAL, "--port %s: bad target '%s'",
		                p->name, target);
	}
	return 0;
}

int vmm_parse_options(int argc, char **argv, struct vmm_options *opt,
                      struct husk_error *err)
{
	enum {
		O_KERNEL = 256,
		O_INITRD,
		O_CMDLINE,
		O_MEMORY,
		O_CPUS,
		O_DISK,
		O_PORT,
		O_RNG,
		O_SERIAL_LOG,
		O_CONTROL,
		O_NO_SECCOMP,
		O_NET,
		O_SHARE,
		O_DEBUG,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {"memory", required_argument, NULL, O_MEMORY},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"disk", required_argument, NULL, O_DISK},
	    {"port", required_argument, NULL, O_PORT},
	    {"rng", no_argument, NULL, O_RNG},
	    {"serial-log", required_argument, NULL, O_SERIAL_LOG},
	    {"control", required_argument, NULL, O_CONTROL},
	    {"no-seccomp", no_argument, NULL, O_NO_SECCOMP},
	    {"net", required_argument, NULL, O_NET},
	    {"share", required_argument, NULL, O_SHARE},
	    {"debug", no_argument, NULL, O_DEBUG},
	    {"help", no_argument, NULL, O_HELP},
	    {0},
	};
	memset(opt, 0, sizeof(*opt));
	opt->cmdline = VMM_DEFAULT_CMDLINE;
	opt->memory_mib = 256;
	opt->cpus = 1;
	opt->console_fd = STDOUT_FILENO;
	opt->seccomp = true;
	unsigned long long v;
	int c, rc;
	/* 0, not 1: glibc then also forgets where an earlier parse stopped
	 * inside a group of short options ("-xy"), which it would otherwise
	 * go on reading on the next call. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_KERNEL: opt->kernel = optarg; break;
		case O_INITRD: opt->initrd = optarg; break;
		case O_CMDLINE: opt->cmdline = optarg; break;
		case O_MEMORY:
			/* At least 32 MiB: a kernel and its initramfs must fit.
			 */
			if (parse_uint(optarg, 32, 1u << 20, &v) < 0)
				return husk_err(
				    err, EINVAL,
				    "--memory '%s': MiB, 32..1048576", optarg);
			opt->memory_mib = v;
			break;
		case O_CPUS:
			if (parse_uint(optarg, 1, VM_MAX_CPUS, &v) < 0)
				return husk_err(err, EINVAL,
				                "--cpus '%s': 1..%d", optarg,
				                VM_MAX_CPUS);
			opt->cpus = (int)v;
			break;
		case O_DISK:
			if (opt->ndisks == VMM_MAX_DISKS)
				return husk_err(err, E2BIG, "at most %d disks",
				                VMM_MAX_DISKS);
			rc = parse_disk(optarg, &opt->disks[opt->ndisks], err);
			if (rc < 0)
				return rc;
			opt->ndisks++;
			break;
		case O_PORT:
			if (opt->nports == VMM_MAX_PORTS)
				return husk_err(err, E2BIG, "at most %d ports",
				                VMM_MAX_PORTS);
			rc = parse_port(optarg, &opt->ports[opt->nports], err);
			if (rc < 0)
				return rc;
			opt->nports++;
			break;
		case O_RNG: opt->rng = true; break;
		case O_SERIAL_LOG: opt->console_path = optarg; break;
		case O_CONTROL: opt->control = optarg; break;
		case O_NO_SECCOMP: opt->seccomp = false; break;
		case O_NET:
			rc = vmm_parse_net(optarg, &opt->net, err);
			if (rc < 0)
				return rc;
			break;
		case O_SHARE:
			if (opt->nshares == VMM_MAX_SHARES)
				return husk_err(err, E2BIG, "at most %d shares",
				                VMM_MAX_SHARES);
			rc = vmm_parse_share(optarg, &opt->shares[opt->nshares],
			                     opt->shares, opt->nshares, err);
			if (rc < 0)
				return rc;
			opt->nshares++;
			break;
		case O_DEBUG: opt->debug = true; break;
		case O_HELP: fputs(usage, stdout); return 1;
		default:
			/* An unknown short option may sit inside a group
			 * whose word optind has not passed yet: name it by
			 * optopt, not by a neighbouring word. */
			if (optopt > 0 && optopt < O_KERNEL)
				return husk_err(
				    err, EINVAL,
				    "unknown option '-%c' (see --help)",
				    optopt);
			return husk_err(
			    err, EINVAL,
			    "unknown or incomplete option '%s' (see "
			    "--help)",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return husk_err(err, EINVAL, "unexpected argument '%s'",
		                argv[optind]);
	if (!opt->kernel)
		return husk_err(err, EINVAL, "--kernel is required");
	for (unsigned i = 0; i < opt->nports; i++)
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(opt->ports[i].name, opt->ports[j].name))
				return husk_err(err, EINVAL,
				                "--port %s given twice",
				                opt->ports[i].name);
	if (opt->console_path) {
		opt->console_fd =
		    open(opt->console_path,
		         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (opt->console_fd < 0)
			return husk_err_errno(err, errno, "--serial-log %s",
			                      opt->console_path);
	}
	return 0;
}

int vmm_build_cmdline(const struct vmm_options *opt,
                      const struct vmm_mmio_slot *slots, unsigned nslots,
                      char *buf, size_t len, struct husk_error *err)
{
	size_t used = (size_t)snprintf(buf, len, "%s", opt->cmdline);
	for (unsigned i = 0; i < nslots && used < len; i++)
		used += (size_t)snprintf(
		    buf + used, len - used, " virtio_mmio.device=4K@0x%llx:%u",
		    (unsigned long long)slots[i].base, slots[i].irq);
	if (used >= len)
		return husk_err(err, E2BIG,
		                "kernel command line longer than %zu bytes",
		                len - 1);
	return 0;
}
