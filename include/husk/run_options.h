/* `husk run`'s command line, spelled as Docker's: parsed into a plain
 * struct so that the parser has unit tests and the front end only acts. */
#ifndef HUSK_RUN_OPTIONS_H
#define HUSK_RUN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"

/* -p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] */
struct husk_run_port {
	bool udp;
	char host_ip[16]; /* dotted IPv4; "" every address (Docker's 0.0.0.0) */
	unsigned host_port, container_port; /* 1..65535 */
};

struct husk_run_options {
	bool interactive, tty, rm, read_only, debug;
	const char *rootfs;     /* --rootfs DIR */
	const char *image;      /* IMAGE, when no --rootfs */
	const char *name;       /* --name */
	const char *hostname;   /* -h/--hostname */
	const char *workdir;    /* -w */
	const char *user;       /* -u */
	const char *entrypoint; /* --entrypoint ("" clears it) */
	const char *vmm;        /* --vmm husk|qemu|auto */
	const char *connect;    /* --connect PATH: a host agent (tests) */
	uint64_t memory;        /* -m, bytes; 0 none */
	uint32_t cpu_millis;    /* --cpus x 1000; 0 none */
	uint64_t pids_limit;    /* --pids-limit; 0 none */
	/* "KEY=VALUE" entries, in order: --env-file lines then -e, as
	 * Docker applies them (a later one wins). Owned by the struct. */
	char **env;
	size_t nenv;
	bool network_none; /* --network none; else the user-mode NAT */
	struct husk_run_port *ports; /* -p, in order; owned by the struct */
	size_t nports;
	/* the command and its arguments (points into argv) */
	char **cmd;
	size_t ncmd;
};

/* Parses argv (argv[0] is "run"). Errors are EINVAL with a message meant
 * for the user; --env-file problems name the file and line. */
int husk_run_parse(int argc, char **argv, struct husk_run_options *o,
                   struct husk_error *err);
void husk_run_options_free(struct husk_run_options *o);

/* "64m", "1g", "512k", "1048576" (bytes) like Docker's -m. */
int husk_parse_size(const char *s, uint64_t *out, struct husk_error *err);
/* One -p value. EINVAL with a message for ranges, a missing host port,
 * IPv6 or a bad address, a port outside 1..65535, another protocol. */
int husk_parse_publish(const char *s, struct husk_run_port *out,
                       struct husk_error *err);
/* "1.5" CPUs as thousandths. */
int husk_parse_cpus(const char *s, uint32_t *millis, struct husk_error *err);

extern const char husk_run_usage[];

#endif
