/* `husk run`'s command line; see husk/run_options.h. */
#include "husk/run_options.h"

#include "husk/tap.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char husk_run_usage[] =
    "usage: husk run [OPTIONS] --rootfs DIR COMMAND [ARG...]\n"
    "       husk run [OPTIONS] IMAGE [COMMAND] [ARG...]   (images: not yet)\n"
    "\n"
    "Runs a command in a new container inside its own microVM.\n"
    "\n"
    "  -d, --detach            run in the background and print the "
    "container's id\n"
    "  -i, --interactive       keep stdin open\n"
    "  -t, --tty               allocate a terminal\n"
    "      --rm                remove the container when it exits\n"
    "  -e, --env KEY[=VALUE]   set an environment variable\n"
    "      --env-file FILE     read KEY=VALUE lines\n"
    "  -w, --workdir DIR       working directory inside the container\n"
    "  -u, --user USER[:GROUP] user name or uid, group name or gid\n"
    "      --entrypoint CMD    the program to run (COMMAND becomes its "
    "arguments)\n"
    "  -h, --hostname NAME     the container's host name\n"
    "  -m, --memory SIZE       memory limit (b, k, m, g)\n"
    "      --cpus N            CPU limit (and the VM's vCPUs)\n"
    "      --pids-limit N      at most N processes (-1: no limit)\n"
    "      --name NAME         the container's name\n"
    "      --read-only         mount the root file system read-only\n"
    "      --rootfs DIR        run DIR as the root file system\n"
    "  -v, --volume HOST:CONTAINER[:ro]  mount a host directory\n"
    "  -p, --publish [IP:]HOSTPORT:CONTAINERPORT[/udp]  publish a port\n"
    "      --network user|none the VM's network: NAT with outbound access "
    "(default), or none\n"
    "      --network tap:BRIDGE[,ifname=NAME]  a tap on a host bridge "
    "(needs --ip)\n"
    "      --ip ADDR/PREFIX    the container's address on the tap network\n"
    "      --gateway ADDR      its default route (default: the bridge's "
    "address)\n"
    "      --dns ADDR          its name server (tap network)\n"
    "      --vmm husk|qemu|auto  which VMM runs the microVM (default auto)\n"
    "      --debug             keep the VM's logs and say where they are\n";

int husk_parse_size(const char *s, uint64_t *out, struct husk_error *err)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)s[0]))
		return husk_err(err, EINVAL, "invalid size: '%s'", s);
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0':
	case 'b': break;
	case 'k': mult = 1ull << 10; break;
	case 'm': mult = 1ull << 20; break;
	case 'g': mult = 1ull << 30; break;
	default: return husk_err(err, EINVAL, "invalid size: '%s'", s);
	}
	if (*end && end[1] &&
	    !(tolower((unsigned char)end[1]) == 'b' && !end[2]))
		return husk_err(err, EINVAL, "invalid size: '%s'", s);
	if (errno || v > UINT64_MAX / mult)
		return husk_err(err, EINVAL, "size out of range: '%s'", s);
	*out = v * mult;
	return 0;
}

int husk_parse_cpus(const char *s, uint32_t *millis, struct husk_error *err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1024)
		return husk_err(err, EINVAL,
		                "invalid --cpus '%s': a number of CPUs above 0",
		                s);
	*millis = (uint32_t)(v * 1000 + 0.5);
	if (*millis == 0)
		*millis = 1;
	return 0;
}

/* Docker's --pids-limit: a positive count, or 0 / -1 for none. */
static int parse_pids_limit(const char *s, uint64_t *out,
                            struct husk_error *err)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < -1)
		return husk_err(err, EINVAL, "invalid --pids-limit '%s'", s);
	*out = v > 0 ? (uint64_t)v : 0;
	return 0;
}

static int add_env(struct husk_run_options *o, const char *kv, size_t n,
                   struct husk_error *err)
{
	char **grown = realloc(o->env, (o->nenv + 2) * sizeof(char *));
	if (!grown)
		return husk_err(err, ENOMEM, "out of memory");
	o->env = grown;
	if (!(o->env[o->nenv] = strndup(kv, n)))
		return husk_err(err, ENOMEM, "out of memory");
	o->env[++o->nenv] = NULL;
	return 0;
}

/* Docker's -e: KEY=VALUE as is; a bare KEY takes the host's value and is
 * left out when the host has none. */
static int env_entry(struct husk_run_options *o, const char *s, size_t n,
                     const char *where, struct husk_error *err)
{
	const char *eq = memchr(s, '=', n);
	if (n == 0 || eq == s)
		return husk_err(err, EINVAL,
		                "%sinvalid environment variable: '%.*s'", where,
		                (int)n, s);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0' || (!eq && isspace((unsigned char)s[i])))
			return husk_err(
			    err, EINVAL,
			    "%sinvalid environment variable: '%.*s'", where,
			    (int)n, s);
	}
	if (eq)
		return add_env(o, s, n, err);
	char key[256];
	if (n >= sizeof(key))
		return husk_err(err, EINVAL, "%senvironment name too long",
		                where);
	memcpy(key, s, n);
	key[n] = '\0';
	const char *v = getenv(key);
	if (!v)
		return 0;
	size_t len = n + 1 + strlen(v);
	char *kv = malloc(len + 1);
	if (!kv)
		return husk_err(err, ENOMEM, "out of memory");
	snprintf(kv, len + 1, "%s=%s", key, v);
	int rc = add_env(o, kv, len, err);
	free(kv);
	return rc;
}

static int env_file(struct husk_run_options *o, const char *path,
                    struct husk_error *err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return husk_err_errno(err, errno, "--env-file %s", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0, lineno = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		const char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			continue;
		char where[4200];
		snprintf(where, sizeof(where), "%s line %d: ", path, lineno);
		rc = env_entry(o, p, strlen(p), where, err);
	}
	free(line);
	fclose(f);
	return rc;
}

/* A port number: 1..65535 in decimal. */
static int port_number(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int husk_parse_publish(const char *s, struct husk_run_port *out,
                       struct husk_error *err)
{
	memset(out, 0, sizeof(*out));
	const char *proto = strchr(s, '/');
	size_t len = proto ? (size_t)(proto - s) : strlen(s);
	if (proto && !strcmp(proto, "/udp"))
		out->udp = true;
	else if (proto && strcmp(proto, "/tcp"))
		return husk_err(err, EINVAL,
		                "-p %s: the protocol is tcp or udp", s);
	if (memchr(s, '-', len))
		return husk_err(err, EINVAL,
		                "-p %s: port ranges are not supported; publish "
		                "each port",
		                s);
	const char *c2 = memrchr(s, ':', len);
	if (!c2)
		return husk_err(err, EINVAL,
		                "-p %s: give HOSTPORT:CONTAINERPORT (husk "
		                "does not pick host ports)",
		                s);
	const char *c1 = memrchr(s, ':', (size_t)(c2 - s));
	const char *hp = c1 ? c1 + 1 : s;
	if ((c1 && memchr(s, ':', (size_t)(c1 - s))) || memchr(s, '[', len))
		return husk_err(err, EINVAL,
		                "-p %s: IPv6 addresses are not supported", s);
	if (hp == c2)
		return husk_err(err, EINVAL,
		                "-p %s: a host port is required (husk does not "
		                "pick host ports)",
		                s);
	if (port_number(hp, (size_t)(c2 - hp), &out->host_port) < 0 ||
	    port_number(c2 + 1, (size_t)(s + len - c2 - 1),
	                &out->container_port) < 0)
		return husk_err(err, EINVAL,
		                "-p %s: ports are numbers from 1 to 65535", s);
	if (c1) {
		size_t n = (size_t)(c1 - s);
		struct in_addr a;
		if (n == 0 || n >= sizeof(out->host_ip))
			return husk_err(err, EINVAL,
			                "-p %s: '%.*s' is not an IPv4 address",
			                s, (int)n, s);
		memcpy(out->host_ip, s, n);
		out->host_ip[n] = '\0';
		if (inet_pton(AF_INET, out->host_ip, &a) != 1)
			return husk_err(err, EINVAL,
			                "-p %s: '%s' is not an IPv4 address", s,
			                out->host_ip);
		/* 0.0.0.0 is what "" means: keep one spelling. */
		if (a.s_addr == 0)
			out->host_ip[0] = '\0';
	}
	return 0;
}

static int add_publish(struct husk_run_options *o, const char *arg,
                       struct husk_error *err)
{
	struct husk_run_port p;
	if (husk_parse_publish(arg, &p, err) < 0)
		return -err->code;
	for (size_t i = 0; i < o->nports; i++)
		if (o->ports[i].host_port == p.host_port &&
		    o->ports[i].udp == p.udp)
			return husk_err(
			    err, EINVAL,
			    "-p %s: host port %u is published twice", arg,
			    p.host_port);
	struct husk_run_port *grown =
	    realloc(o->ports, (o->nports + 1) * sizeof(*grown));
	if (!grown)
		return husk_err(err, ENOMEM, "out of memory");
	o->ports = grown;
	o->ports[o->nports++] = p;
	return 0;
}

int husk_parse_volume(const char *s, struct husk_run_volume *out,
                      struct husk_error *err)
{
	memset(out, 0, sizeof(*out));
	const char *c1 = strchr(s, ':');
	if (!c1 || s[0] != '/')
		return husk_err(err, EINVAL,
		                "-v %s: give HOST-DIR:CONTAINER-DIR[:ro] with "
		                "absolute paths (named volumes are not "
		                "supported)",
		                s);
	const char *c2 = strchr(c1 + 1, ':');
	const char *mode = c2 ? c2 + 1 : "rw";
	size_t clen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (c1[1] != '/' || clen == 0)
		return husk_err(err, EINVAL,
		                "-v %s: the container path must be absolute",
		                s);
	if (strcmp(mode, "ro") && strcmp(mode, "rw"))
		return husk_err(err, EINVAL,
		                "-v %s: the mode is ro or rw, not '%s'", s,
		                mode);
	if (memchr(s, ',', (size_t)(c1 - s)))
		return husk_err(err, EINVAL,
		                "-v %s: a host path with ',' cannot be shared",
		                s);
	out->readonly = !strcmp(mode, "ro");
	out->host = strndup(s, (size_t)(c1 - s));
	out->container = strndup(c1 + 1, clen);
	if (!out->host || !out->container) {
		free(out->host);
		free(out->container);
		return husk_err(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int add_volume(struct husk_run_options *o, const char *arg,
                      struct husk_error *err)
{
	struct husk_run_volume v;
	if (husk_parse_volume(arg, &v, err) < 0)
		return -err->code;
	struct husk_run_volume *grown =
	    realloc(o->volumes, (o->nvolumes + 1) * sizeof(*grown));
	if (!grown) {
		free(v.host);
		free(v.container);
		return husk_err(err, ENOMEM, "out of memory");
	}
	o->volumes = grown;
	o->volumes[o->nvolumes++] = v;
	return 0;
}

/* An interface name for the kernel: 1..15 bytes, no '/', ':', ',' or
 * blank. */
static bool ifname_ok(const char *s, size_t len)
{
	if (len == 0 || len > 15 || (len == 1 && s[0] == '.') ||
	    (len == 2 && !memcmp(s, "..", 2)))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ',' ||
		    (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* "tap:BRIDGE[,ifname=NAME]" */
static int set_tap(struct husk_run_options *o, const char *arg,
                   struct husk_error *err)
{
	const char *br = arg + 4;
	const char *comma = strchr(br, ',');
	size_t blen = comma ? (size_t)(comma - br) : strlen(br);
	if (!ifname_ok(br, blen))
		return husk_err(err, EINVAL,
		                "--network %s: want tap:BRIDGE[,ifname=NAME] "
		                "with an interface name of 1 to 15 characters",
		                arg);
	memcpy(o->tap_bridge, br, blen);
	o->tap_bridge[blen] = '\0';
	o->tap_ifname[0] = '\0';
	if (comma) {
		const char *name = comma + 1;
		if (strncmp(name, "ifname=", 7) ||
		    !ifname_ok(name + 7, strlen(name + 7)))
			return husk_err(err, EINVAL,
			                "--network %s: after the bridge only "
			                "ifname=NAME (1 to 15 characters)",
			                arg);
		strcpy(o->tap_ifname, name + 7);
	}
	o->network_tap = true;
	return 0;
}

static int set_network(struct husk_run_options *o, const char *arg,
                       struct husk_error *err)
{
	o->network_tap = false;
	/* Docker's default network is "bridge": here the user-mode NAT
	 * plays its part (outbound access, published ports). */
	if (!strcmp(arg, "user") || !strcmp(arg, "bridge") ||
	    !strcmp(arg, "default"))
		o->network_none = false;
	else if (!strcmp(arg, "none"))
		o->network_none = true;
	else if (!strncmp(arg, "tap:", 4)) {
		o->network_none = false;
		return set_tap(o, arg, err);
	} else
		return husk_err(err, EINVAL,
		                "--network %s: husk knows user (the default), "
		                "none and tap:BRIDGE",
		                arg);
	return 0;
}

/* --ip, --gateway, --dns: only with a tap, where they are all there is to
 * the guest's network (the user network fixes its own). */
static int check_tap_options(const struct husk_run_options *o,
                             struct husk_error *err)
{
	struct in_addr a, gw;
	unsigned prefix;
	if (!o->network_tap) {
		const char *opt = o->ip        ? "--ip"
		                  : o->gateway ? "--gateway"
		                  : o->dns     ? "--dns"
		                               : NULL;
		if (opt)
			return husk_err(
			    err, EINVAL,
			    "%s needs --network tap:BRIDGE (the user "
			    "network has fixed addresses)",
			    opt);
		return 0;
	}
	if (o->nports)
		return husk_err(err, EINVAL,
		                "-p publishes ports of the user network; on a "
		                "tap network the container's address is "
		                "reachable as it is");
	if (!o->ip)
		return husk_err(err, EINVAL,
		                "--network tap:%s needs --ip ADDR/PREFIX (e.g. "
		                "--ip 10.88.0.2/24)",
		                o->tap_bridge);
	if (husk_parse_cidr("--ip", o->ip, &a, &prefix, err) < 0)
		return -err->code;
	if (o->gateway) {
		uint32_t mask = htonl(~0u << (32 - prefix));
		if (inet_pton(AF_INET, o->gateway, &gw) != 1)
			return husk_err(err, EINVAL,
			                "--gateway %s: not an IPv4 address",
			                o->gateway);
		if ((gw.s_addr & mask) != (a.s_addr & mask) ||
		    gw.s_addr == a.s_addr)
			return husk_err(err, EINVAL,
			                "--gateway %s: not another address in "
			                "the subnet of --ip %s",
			                o->gateway, o->ip);
	}
	if (o->dns && inet_pton(AF_INET, o->dns, &gw) != 1)
		return husk_err(err, EINVAL, "--dns %s: not an IPv4 address",
		                o->dns);
	return 0;
}

enum {
	O_RM = 256,
	O_NETWORK,
	O_IP,
	O_GATEWAY,
	O_DNS,
	O_ENV_FILE,
	O_ENTRYPOINT,
	O_CPUS,
	O_PIDS_LIMIT,
	O_NAME,
	O_READ_ONLY,
	O_ROOTFS,
	O_VMM,
	O_CONNECT,
	O_DEBUG,
	O_HELP,
};

static const struct option run_opts[] = {
    {"detach", no_argument, NULL, 'd'},
    {"volume", required_argument, NULL, 'v'},
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"rm", no_argument, NULL, O_RM},
    {"env", required_argument, NULL, 'e'},
    {"env-file", required_argument, NULL, O_ENV_FILE},
    {"workdir", required_argument, NULL, 'w'},
    {"user", required_argument, NULL, 'u'},
    {"entrypoint", required_argument, NULL, O_ENTRYPOINT},
    {"hostname", required_argument, NULL, 'h'},
    {"memory", required_argument, NULL, 'm'},
    {"cpus", required_argument, NULL, O_CPUS},
    {"pids-limit", required_argument, NULL, O_PIDS_LIMIT},
    {"name", required_argument, NULL, O_NAME},
    {"read-only", no_argument, NULL, O_READ_ONLY},
    {"rootfs", required_argument, NULL, O_ROOTFS},
    {"publish", required_argument, NULL, 'p'},
    {"network", required_argument, NULL, O_NETWORK},
    {"net", required_argument, NULL, O_NETWORK},
    {"ip", required_argument, NULL, O_IP},
    {"gateway", required_argument, NULL, O_GATEWAY},
    {"dns", required_argument, NULL, O_DNS},
    {"vmm", required_argument, NULL, O_VMM},
    {"connect", required_argument, NULL, O_CONNECT},
    {"debug", no_argument, NULL, O_DEBUG},
    {"help", no_argument, NULL, O_HELP},
    {0},
};

static int one_option(struct husk_run_options *o, int c, const char *arg,
                      struct husk_error *err)
{
	switch (c) {
	case 'd': o->detach = true; return 0;
	case 'v': return add_volume(o, arg, err);
	case 'i': o->interactive = true; return 0;
	case 't': o->tty = true; return 0;
	case O_RM: o->rm = true; return 0;
	case 'e': return env_entry(o, arg, strlen(arg), "", err);
	case O_ENV_FILE: return env_file(o, arg, err);
	case 'w':
		if (arg[0] != '/')
			return husk_err(
			    err, EINVAL,
			    "the working directory '%s' is invalid: it "
			    "needs to be an absolute path",
			    arg);
		o->workdir = arg;
		return 0;
	case 'u': o->user = arg; return 0;
	case O_ENTRYPOINT: o->entrypoint = arg; return 0;
	case 'h': o->hostname = arg; return 0;
	case 'm':
		if (husk_parse_size(arg, &o->memory, err) < 0)
			return -err->code;
		/* Docker's floor: below it nothing starts. */
		if (o->memory && o->memory < (6u << 20))
			return husk_err(err, EINVAL,
			                "minimum memory limit allowed is 6MB");
		return 0;
	case O_CPUS: return husk_parse_cpus(arg, &o->cpu_millis, err);
	case O_PIDS_LIMIT: return parse_pids_limit(arg, &o->pids_limit, err);
	case O_NAME: o->name = arg; return 0;
	case O_READ_ONLY: o->read_only = true; return 0;
	case O_ROOTFS: o->rootfs = arg; return 0;
	case 'p': return add_publish(o, arg, err);
	case O_NETWORK: return set_network(o, arg, err);
	case O_IP: o->ip = arg; return 0;
	case O_GATEWAY: o->gateway = arg; return 0;
	case O_DNS: o->dns = arg; return 0;
	case O_VMM: o->vmm = arg; return 0;
	case O_CONNECT: o->connect = arg; return 0;
	case O_DEBUG: o->debug = true; return 0;
	}
	return husk_err(err, EINVAL, "unknown option (see 'husk run --help')");
}

int husk_run_parse(int argc, char **argv, struct husk_run_options *o,
                   struct husk_error *err)
{
	memset(o, 0, sizeof(*o));
	optind = 0; /* a full re-initialisation of getopt */
	opterr = 0;
	int c;
	/* '+': options end at the first argument, which is the image or
	 * the command, as in Docker. */
	while ((c = getopt_long(argc, argv, "+dite:w:u:h:m:p:v:", run_opts,
	                        NULL)) != -1) {
		if (c == O_HELP)
			return husk_err(err, EAGAIN, "help");
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];
			return husk_err(
			    err, EINVAL,
			    "%s: unknown option or missing value (see "
			    "'husk run --help')",
			    bad ? bad : "?");
		}
		int rc = one_option(o, c, optarg, err);
		if (rc < 0)
			return rc;
	}
	char **rest = argv + optind;
	size_t nrest = (size_t)(argc - optind);
	if (!o->rootfs) {
		if (nrest == 0)
			return husk_err(
			    err, EINVAL,
			    "'husk run' requires --rootfs DIR or an image");
		o->image = rest[0];
		rest++;
		nrest--;
	}
	if (o->network_none && o->nports)
		return husk_err(err, EINVAL,
		                "conflicting options: -p publishes ports, "
		                "--network none has none");
	if (check_tap_options(o, err) < 0)
		return -err->code;
	/* -d runs through husk-runtime, whose container stdio is a log
	 * file: no terminal to hand it, and nothing left to --rm it. */
	if (o->detach && o->tty)
		return husk_err(err, EINVAL,
		                "-t with -d is not supported: use 'husk exec "
		                "-t' on the running container");
	if (o->detach && o->rm)
		return husk_err(err, EINVAL,
		                "--rm with -d is not supported: 'husk rm' "
		                "the container once it exits");
	if (o->detach && o->connect)
		return husk_err(err, EINVAL,
		                "--connect runs in the foreground; drop -d");
	o->cmd = rest;
	o->ncmd = nrest;
	if (o->ncmd == 0 && (!o->entrypoint || !o->entrypoint[0]) && !o->image)
		return husk_err(err, EINVAL, "no command given");
	return 0;
}

void husk_run_options_free(struct husk_run_options *o)
{
	for (size_t i = 0; i < o->nenv; i++)
		free(o->env[i]);
	free(o->env);
	o->env = NULL;
	o->nenv = 0;
	free(o->ports);
	o->ports = NULL;
	o->nports = 0;
	for (size_t i = 0; i < o->nvolumes; i++) {
		free(o->volumes[i].host);
		free(o->volumes[i].container);
	}
	free(o->volumes);
	o->volumes = NULL;
	o->nvolumes = 0;
}
