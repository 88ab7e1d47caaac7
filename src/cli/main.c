#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct husk_command commands[] = {
    {"check", "report whether this host's /dev/kvm can run microVMs",
     cmd_check},
    {"run", "run a command in a new container in its own microVM", cmd_run},
    {"ps", "list containers (-a: stopped ones too)", cmd_ps},
    {"logs", "show a container's output (-f: follow)", cmd_logs},
    {"exec", "run a command in a running container", cmd_exec},
    {"stop", "stop containers (SIGTERM, then SIGKILL)", cmd_stop},
    {"kill", "send a signal to containers", cmd_kill},
    {"start", "start stopped containers again", cmd_start},
    {"restart", "stop and start containers", cmd_restart},
    {"wait", "wait for containers to stop; print exit codes", cmd_wait},
    {"rm", "remove containers", cmd_rm},
    {"top", "show a container's processes", cmd_top},
    {"stats", "show containers' memory, CPU and pids", cmd_stats},
    {"pod", "pod create|ls|rm|inspect: containers sharing one microVM",
     cmd_pod},
    {"pull", "pull an image from a registry", cmd_pull},
    {"load", "load images from a docker save archive or OCI layout", cmd_load},
    {"images", "list images", cmd_images},
    {"rmi", "remove images", cmd_rmi},
    {"inspect", "show a container's or an image's details as JSON",
     cmd_inspect},
    {"image", "image prune | image disk IMAGE: unused images, disks",
     cmd_image},
    {"login", "store credentials for a registry", cmd_login},
    {"logout", "remove credentials for a registry", cmd_logout},
    {"version", "print husk's version", cmd_version},
    {"help", "list the commands", cmd_help},
};

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("husk %s\n", HUSK_VERSION);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: husk [--root DIR] COMMAND [OPTIONS]\n\n"
	             "--root DIR: the image store (default $HUSK_ROOT, else "
	             "/var/lib/husk)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
		        commands[i].summary);
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	/* husk --root DIR ...: the image store's place, as HUSK_ROOT. */
	while (argc >= 3 && !strcmp(argv[1], "--root")) {
		setenv("HUSK_ROOT", argv[2], 1);
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2) {
		usage(stderr);
		return HUSK_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		name = "help";
	else if (!strcmp(name, "--version"))
		name = "version";
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(commands[i].name, name))
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "husk: unknown command '%s' (see 'husk help')\n",
	        argv[1]);
	return HUSK_EXIT_USAGE;
}
