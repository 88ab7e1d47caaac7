/* husk pull, login, logout. Progress as `docker pull` shows it: one line
 * per blob redrawn in place on a terminal, plain lines otherwise. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "husk/reference.h"
#include "husk/registry.h"
#include "husk/store.h"

#define MAX_INSECURE 32

/* Registries reached over plain HTTP besides loopback: HUSK_INSECURE_
 * REGISTRIES (comma-separated) and --insecure-registry. */
struct registry_flags {
	const char *insecure[MAX_INSECURE + 1];
	size_t n;
	char *env_copy;
	const char *platform;
};

static void insecure_from_env(struct registry_flags *f)
{
	const char *env = getenv("HUSK_INSECURE_REGISTRIES");
	if (!env || !*env || !(f->env_copy = strdup(env)))
		return;
	char *save = NULL;
	for (char *h = strtok_r(f->env_copy, ",", &save);
	     h && f->n < MAX_INSECURE; h = strtok_r(NULL, ",", &save))
		f->insecure[f->n++] = h;
}

struct progress {
	bool tty;
	char last[80];
};

static void on_progress(const struct husk_pull_progress *p, void *ctx)
{
	struct progress *pr = ctx;
	const char *hex = strchr(p->digest, ':');
	hex = hex ? hex + 1 : p->digest;
	if (pr->tty) {
		/* one line, redrawn: the digest and how far it is */
		fprintf(stderr, "\r\033[K%.12s: %s %llu/%llu kB", hex,
		        p->finished ? "Pull complete" : "Downloading",
		        (unsigned long long)(p->done / 1000),
		        (unsigned long long)(p->total / 1000));
		if (p->finished)
			fputc('\n', stderr);
	} else if (p->finished) {
		fprintf(stderr, "%.12s: Pull complete\n", hex);
	}
}

static void opts_for(struct husk_pull_opts *o, struct registry_flags *f,
                     struct progress *pr)
{
	memset(o, 0, sizeof(*o));
	f->insecure[f->n] = NULL;
	o->insecure = f->insecure;
	o->platform = f->platform;
	o->progress = on_progress;
	o->progress_ctx = pr;
	pr->tty = isatty(STDERR_FILENO);
}

static void print_pulled(const struct husk_image *img, const char *name)
{
	if (img->manifest_digest[0])
		printf("Digest: %s\n", img->manifest_digest);
	printf("Status: Downloaded newer image for %s\n", name);
}

int cli_pull(struct husk_store *s, const char *name, struct husk_image *out,
             struct husk_error *err)
{
	struct registry_flags f = {0};
	struct progress pr = {0};
	struct husk_pull_opts o;
	insecure_from_env(&f);
	opts_for(&o, &f, &pr);
	int rc = husk_pull(s, name, &o, out, err);
	if (rc == 0) {
		/* docker run prints the pull's lines on stderr */
		if (out->manifest_digest[0])
			fprintf(stderr, "Digest: %s\n", out->manifest_digest);
		fprintf(stderr, "Status: Downloaded newer image for %s\n",
		        name);
	}
	free(f.env_copy);
	return rc;
}

static int parse_registry_flags(int argc, char **argv, const char *usage,
                                struct registry_flags *f, bool platform_ok)
{
	static const struct option opts[] = {
	    {"platform", required_argument, NULL, 'p'},
	    {"insecure-registry", required_argument, NULL, 'k'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0}};
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!platform_ok)
				return -1;
			f->platform = optarg;
			break;
		case 'k':
			if (f->n < MAX_INSECURE)
				f->insecure[f->n++] = optarg;
			break;
		case 'q': break;
		case 'h': printf("%s", usage); return 1;
		default: return -1;
		}
	}
	return 0;
}

int cmd_pull(int argc, char **argv)
{
	static const char usage[] =
	    "usage: husk pull [--platform OS/ARCH] [--insecure-registry HOST] "
	    "IMAGE\n";
	struct registry_flags f = {0};
	insecure_from_env(&f);
	int prc = parse_registry_flags(argc, argv, usage, &f, true);
	if (prc != 0 || optind != argc - 1) {
		free(f.env_copy);
		if (prc == 1)
			return 0;
		fputs(usage, stderr);
		return HUSK_EXIT_USAGE;
	}
	const char *name = argv[optind];
	struct husk_store *s;
	if (cli_open_store(&s) < 0) {
		free(f.env_copy);
		return HUSK_EXIT_USAGE;
	}
	struct progress pr = {0};
	struct husk_pull_opts o;
	opts_for(&o, &f, &pr);
	struct husk_image img = {0};
	struct husk_error err = {0};
	struct husk_ref ref;
	char full[HUSK_REF_STRING_MAX] = "";
	if (husk_ref_parse(name, &ref, &err) == 0)
		husk_ref_string(&ref, full, sizeof(full));
	int rc = husk_pull(s, name, &o, &img, &err);
	if (rc == 0)
		print_pulled(&img, full[0] ? full : name);
	husk_image_free(&img);
	husk_store_close(s);
	free(f.env_copy);
	if (rc < 0) {
		fprintf(stderr, "husk pull: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* The password: --password-stdin, or typed without echo. */
static int read_password(bool from_stdin, char *buf, size_t cap)
{
	struct termios saved, quiet;
	bool tty = !from_stdin && isatty(STDIN_FILENO);
	if (tty) {
		fprintf(stderr, "Password: ");
		tcgetattr(STDIN_FILENO, &saved);
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	bool ok = fgets(buf, (int)cap, stdin) != NULL;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int cmd_login(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"username", required_argument, NULL, 'u'},
	    {"password", required_argument, NULL, 'p'},
	    {"password-stdin", no_argument, NULL, 's'},
	    {"insecure-registry", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {0}};
	const char *user = NULL, *pass = NULL;
	bool pass_stdin = false;
	struct registry_flags f = {0};
	insecure_from_env(&f);
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': user = optarg; break;
		case 'p': pass = optarg; break;
		case 's': pass_stdin = true; break;
		case 'k':
			if (f.n < MAX_INSECURE)
				f.insecure[f.n++] = optarg;
			break;
		case 'h':
			printf("usage: husk login [-u USER] [-p PASS | "
			       "--password-stdin] SERVER\n");
			free(f.env_copy);
			return 0;
		default: free(f.env_copy); return HUSK_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !user) {
		fprintf(stderr, "usage: husk login -u USER [-p PASS | "
		                "--password-stdin] SERVER\n");
		free(f.env_copy);
		return HUSK_EXIT_USAGE;
	}
	char typed[1024];
	if (!pass) {
		if (read_password(pass_stdin, typed, sizeof(typed)) < 0) {
			fprintf(stderr, "husk login: no password given\n");
			free(f.env_copy);
			return HUSK_EXIT_USAGE;
		}
		pass = typed;
	}
	struct progress pr = {0};
	struct husk_pull_opts o;
	opts_for(&o, &f, &pr);
	struct husk_error err = {0};
	int rc = husk_registry_login(argv[optind], user, pass, &o, &err);
	memset(typed, 0, sizeof(typed));
	free(f.env_copy);
	if (rc < 0) {
		fprintf(stderr, "husk login: %s\n", err.msg);
		return 1;
	}
	printf("Login Succeeded\n");
	return 0;
}

int cmd_logout(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: husk logout SERVER\n");
		return HUSK_EXIT_USAGE;
	}
	struct registry_flags f = {0};
	struct progress pr = {0};
	struct husk_pull_opts o;
	opts_for(&o, &f, &pr);
	struct husk_error err = {0};
	if (husk_registry_logout(argv[1], &o, &err) < 0) {
		fprintf(stderr, "husk logout: %s\n", err.msg);
		return 1;
	}
	printf("Removing login credentials for %s\n", argv[1]);
	return 0;
}
