/* `husk run`'s command line; see husk/run_options.h. */
#include "husk/run_options.h"

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

enum {
	O_RM = 256,
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
	while ((c = getopt_long(argc, argv, "+ite:w:u:h:m:", run_opts, NULL)) !=
	       -1) {
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
}
