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

/* -v HOST:CONTAINER[:ro|rw]: a host directory inside the container. */
struct husk_run_volume {
	char *host, *container; /* absolute paths, owned */
	bool readonly;
};

struct husk_run_options {
	bool interactive, tty, rm, read_only, debug;
	bool detach;          /* -d: through husk-runtime, in the background */
	const char *rootfs;   /* --rootfs DIR */
	const char *image;    /* IMAGE, when no --rootfs */
	const char *name;     /* --name */
	const char *hostname; /* -h/--hostname */
	const char *workdir;  /* -w */
	const char *user;     /* -u */
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
	/* --network tap:BRIDGE[,ifname=NAME]: a tap on a host bridge, with
	 * the address --ip, and --gateway/--dns when given (all required to
	 * go together; checked by husk_run_parse). */
	bool network_tap;
	char tap_bridge[16];
	char tap_ifname[16];         /* "": the kernel's choice (husk0, ...) */
	const char *ip;              /* --ip A.B.C.D/PREFIX */
	const char *gateway;         /* --gateway A.B.C.D */
	const char *dns;             /* --dns A.B.C.D */
	struct husk_run_port *ports; /* -p, in order; owned by the struct */
	size_t nports;
	struct husk_run_volume *volumes; /* -v, in order; owned */
	size_t nvolumes;
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
/* One -v value into out (its strings allocated; free them with free()).
 * EINVAL with a message for a named volume (no '/'), a relative path, a
 * mode other than ro/rw, a ',' in the host path (neither VMM escapes it). */
int husk_parse_volume(const char *s, struct husk_run_volume *out,
                      struct husk_error *err);
/* "1.5" CPUs as thousandths. */
int husk_parse_cpus(const char *s, uint32_t *millis, struct husk_error *err);

extern const char husk_run_usage[];

#endif
