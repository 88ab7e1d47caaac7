/* husk images, rmi, inspect, load, image prune: the local image store,
 * with Docker's output formats. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "husk/image_disk.h"
#include "husk/image_load.h"
#include "husk/reference.h"
#include "husk/store.h"

int cli_open_store(struct husk_store **s)
{
	struct husk_error err = {0};
	if (husk_store_open(NULL, s, &err) < 0) {
		fprintf(stderr, "husk: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* "4.26MB", Docker's decimal units. */
static void human_size(uint64_t n, char *out, size_t cap)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	snprintf(out, cap, u ? "%.3g%s" : "%.0f%s", v, units[u]);
}

/* "2 weeks ago" from an RFC 3339 time, or "N/A". */
static void human_age(const char *created, char *out, size_t cap)
{
	struct tm tm = {0};
	if (!created || !created[0] ||
	    !strptime(created, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, cap, "N/A");
		return;
	}
	double secs = difftime(time(NULL), timegm(&tm));
	static const struct {
		double span;
		const char *unit;
	} steps[] = {{365 * 86400.0, "year"}, {30 * 86400.0, "month"},
	             {7 * 86400.0, "week"},   {86400.0, "day"},
	             {3600.0, "hour"},        {60.0, "minute"}};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		long n = (long)(secs / steps[i].span);
		if (n >= 1) {
			snprintf(out, cap, "%ld %s%s ago", n, steps[i].unit,
			         n > 1 ? "s" : "");
			return;
		}
	}
	snprintf(out, cap, "Less than a minute ago");
}

static const char *short_id(const char *id)
{
	const char *hex = strchr(id, ':');
	return hex ? hex + 1 : id;
}

/* ---- husk images ---- */

struct list_ctx {
	bool quiet;
	bool any;
};

static void print_row(const struct husk_image *img, const char *repo,
                      const char *tag, bool quiet)
{
	if (quiet) {
		printf("%.12s\n", short_id(img->id));
		return;
	}
	char size[32], age[64];
	human_size(img->size, size, sizeof(size));
	human_age(img->created, age, sizeof(age));
	printf("%-30s %-12s %-14.12s %-22s %s\n", repo, tag, short_id(img->id),
	       age, size);
}

static int list_one(const struct husk_image *img, void *opaque)
{
	struct list_ctx *c = opaque;
	bool tagged = false;
	for (size_t i = 0; i < img->n_refs; i++) {
		struct husk_ref r;
		struct husk_error e;
		if (husk_ref_parse(img->refs[i], &r, &e) < 0 || r.digest[0])
			continue;
		char name[HUSK_REF_STRING_MAX];
		husk_ref_familiar(&r, name, sizeof(name));
		char *colon = strrchr(name, ':');
		if (colon && !strchr(colon, '/'))
			*colon = '\0';
		print_row(img, name, r.tag, c->quiet);
		tagged = true;
		if (c->quiet)
			break;
	}
	if (!tagged)
		print_row(img, "<none>", "<none>", c->quiet);
	return 0;
}

int cmd_images(int argc, char **argv)
{
	static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	struct list_ctx c = {0};
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (opt == 'q')
			c.quiet = true;
		else if (opt == 'h') {
			printf("usage: husk images [-q]\n");
			return 0;
		} else
			return HUSK_EXIT_USAGE;
	}
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	if (!c.quiet)
		printf("%-30s %-12s %-14s %-22s %s\n", "REPOSITORY", "TAG",
		       "IMAGE ID", "CREATED", "SIZE");
	struct husk_error err = {0};
	int rc = husk_store_image_list(s, list_one, &c, &err);
	husk_store_close(s);
	if (rc < 0) {
		fprintf(stderr, "husk images: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	return 0;
}

/* ---- husk rmi, husk image prune ---- */

static void rmi_report(enum husk_rmi_event ev, const char *what, void *ctx)
{
	(void)ctx;
	printf("%s: %s\n", ev == HUSK_RMI_UNTAGGED ? "Untagged" : "Deleted",
	       what);
}

int cmd_rmi(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	bool force = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		if (opt == 'f')
			force = true;
		else if (opt == 'h') {
			printf("usage: husk rmi [-f] IMAGE...\n");
			return 0;
		} else
			return HUSK_EXIT_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "husk rmi: requires at least one image\n");
		return HUSK_EXIT_USAGE;
	}
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct husk_error err = {0};
		if (husk_store_image_remove(s, argv[i], force, rmi_report, NULL,
		                            &err) < 0) {
			fprintf(stderr, "husk rmi: %s\n", err.msg);
			status = 1;
		}
	}
	husk_store_close(s);
	return status;
}

/* husk image disk IMAGE: builds (or finds) the image's read-only disk, as
 * husk run does before it boots, and prints its path. */
static int image_disk(const char *what)
{
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	struct husk_image img = {0};
	struct husk_error err = {0};
	char path[4096];
	int rc = husk_store_image_get(s, what, &img, &err);
	if (rc == 0)
		rc = husk_image_disk(s, &img, path, sizeof(path), &err);
	husk_image_free(&img);
	husk_store_close(s);
	if (rc < 0) {
		fprintf(stderr, "husk image disk: %s\n", err.msg);
		return 1;
	}
	printf("%s\n", path);
	return 0;
}

int cmd_image(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "disk"))
		return image_disk(argv[2]);
	if (argc != 2 || strcmp(argv[1], "prune") != 0) {
		fprintf(stderr,
		        "usage: husk image prune | husk image disk IMAGE\n");
		return HUSK_EXIT_USAGE;
	}
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	struct husk_prune_result res = {0};
	struct husk_error err = {0};
	int rc = husk_store_prune(s, rmi_report, NULL, &res, &err);
	husk_store_close(s);
	if (rc < 0) {
		fprintf(stderr, "husk image prune: %s\n", err.msg);
		return 1;
	}
	char size[32];
	human_size(res.bytes_freed, size, sizeof(size));
	printf("Total reclaimed space: %s\n", size);
	return 0;
}

/* ---- husk load ---- */

static void loaded(const char *name, void *ctx)
{
	(void)ctx;
	printf("%s\n", name);
	fflush(stdout);
}

int cmd_load(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"input", required_argument, NULL, 'i'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0}};
	const char *input = NULL;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "i:qh", opts, NULL)) != -1) {
		if (opt == 'i')
			input = optarg;
		else if (opt == 'q')
			continue;
		else if (opt == 'h') {
			printf(
			    "usage: husk load [-i FILE|DIR]   (a docker save "
			    "archive or an OCI layout; stdin by default)\n");
			return 0;
		} else
			return HUSK_EXIT_USAGE;
	}
	if (!input && isatty(STDIN_FILENO)) {
		fprintf(stderr,
		        "husk load: requested load from stdin, but stdin "
		        "is empty\n");
		return HUSK_EXIT_USAGE;
	}
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	struct husk_error err = {0};
	int rc = input
	             ? husk_image_load(s, input, loaded, NULL, &err)
	             : husk_image_load_fd(s, STDIN_FILENO, loaded, NULL, &err);
	husk_store_close(s);
	if (rc < 0) {
		fprintf(stderr, "husk load: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* ---- husk inspect ---- */

static json_object *str_array(char **v, size_t n)
{
	if (!v)
		return NULL;
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *inspect_json(struct husk_store *s,
                                 const struct husk_image *img,
                                 struct husk_error *err)
{
	struct husk_image_config cfg = {0};
	if (husk_store_image_config(s, img, &cfg, err) < 0)
		return NULL;
	json_object *o = json_object_new_object();
	json_object *tags = json_object_new_array();
	json_object *digests = json_object_new_array();
	for (size_t i = 0; i < img->n_refs; i++) {
		struct husk_ref r;
		struct husk_error e;
		char name[HUSK_REF_STRING_MAX];
		if (husk_ref_parse(img->refs[i], &r, &e) < 0 ||
		    husk_ref_familiar(&r, name, sizeof(name)) < 0)
			continue;
		json_object_array_add(r.digest[0] ? digests : tags,
		                      json_object_new_string(name));
	}
	json_object_object_add(o, "Id", json_object_new_string(img->id));
	json_object_object_add(o, "RepoTags", tags);
	json_object_object_add(o, "RepoDigests", digests);
	json_object_object_add(o, "Created",
	                       json_object_new_string(img->created));
	json_object_object_add(o, "Os", json_object_new_string(img->os));
	json_object_object_add(o, "Architecture",
	                       json_object_new_string(img->architecture));
	if (img->variant[0])
		json_object_object_add(o, "Variant",
		                       json_object_new_string(img->variant));
	json_object_object_add(o, "Size",
	                       json_object_new_int64((int64_t)img->size));
	json_object *c = json_object_new_object();
	json_object_object_add(
	    c, "User", json_object_new_string(cfg.user ? cfg.user : ""));
	json_object_object_add(c, "Env", str_array(cfg.env, cfg.n_env));
	json_object_object_add(c, "Cmd", str_array(cfg.cmd, cfg.n_cmd));
	json_object_object_add(c, "Entrypoint",
	                       str_array(cfg.entrypoint, cfg.n_entrypoint));
	json_object_object_add(
	    c, "WorkingDir",
	    json_object_new_string(cfg.working_dir ? cfg.working_dir : ""));
	json_object_object_add(o, "Config", c);
	json_object *fs = json_object_new_object();
	json_object_object_add(fs, "Type", json_object_new_string("layers"));
	json_object_object_add(fs, "Layers",
	                       str_array(cfg.diff_ids, cfg.n_diff_ids));
	json_object_object_add(o, "RootFS", fs);
	husk_image_config_free(&cfg);
	return o;
}

int cmd_inspect(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: husk inspect CONTAINER|IMAGE...\n");
		return argc < 2 ? HUSK_EXIT_USAGE : 0;
	}
	struct husk_store *s;
	if (cli_open_store(&s) < 0)
		return HUSK_EXIT_USAGE;
	json_object *all = json_object_new_array();
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct husk_image img = {0};
		struct husk_error err = {0};
		json_object *o = NULL;
		/* a container first, then an image, as Docker looks */
		if (cli_container_inspect(argv[i], &o) == 0) {
			json_object_array_add(all, o);
			continue;
		}
		if (husk_store_image_get(s, argv[i], &img, &err) == 0)
			o = inspect_json(s, &img, &err);
		husk_image_free(&img);
		if (!o) {
			fprintf(stderr, "Error: %s\n", err.msg);
			status = 1;
			continue;
		}
		json_object_array_add(all, o);
	}
	cli_print_json_array(all);
	json_object_put(all);
	husk_store_close(s);
	return status;
}
