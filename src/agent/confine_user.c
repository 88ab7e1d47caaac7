/* Docker's -u resolved against the image's /etc/passwd and /etc/group.
 *
 * The agent is a static binary without NSS, and the files belong to the
 * image (possibly hostile), so they are parsed here: line by line, with a
 * bounded line length, skipping comments, blank and malformed lines. The
 * rules are runc's (libcontainer/user GetExecUser), which is what Docker
 * uses; they are spelled out in confine.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confine.h"

/* Longer lines are skipped whole. 64 KiB holds a group with thousands of
 * members; beyond that a line is more likely an attack than a group. */
#define LINE_CAP (64 * 1024)

/* Docker's -u splits into these. */
struct spec {
	const char *user;  /* "" for none */
	const char *group; /* "" for none */
	bool user_numeric, group_numeric;
	uint32_t uid, gid;
};

/* One /etc/passwd entry; strings point into the line buffer. */
struct pw_entry {
	const char *name, *home;
	uid_t uid;
	gid_t gid;
};

/* One /etc/group entry; members is the raw comma-separated list. */
struct gr_entry {
	const char *name;
	char *members;
	gid_t gid;
};

struct line_reader {
	FILE *f;
	char *buf;
};

/* ---- numbers and the spec ---- */

/* Like runc (strconv.Atoi): optional sign, then decimal digits. Returns 1
 * for a number in [0, INT32_MAX], 0 for "not a number", -ERANGE for a
 * number out of range (so "-1" is a bad uid, not a user name). */
static int parse_id(const char *s, uint32_t *out)
{
	const char *p = s;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!*p)
		return 0;
	uint64_t v = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return 0;
		if (v <= INT32_MAX)
			v = v * 10 + (uint64_t)(*p - '0');
	}
	if (neg && v != 0)
		return -ERANGE;
	if (v > INT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 1;
}

/* Splits buf (a copy of the -u value) in place. */
static int parse_spec(char *buf, struct spec *s, struct husk_error *err)
{
	char *colon = strchr(buf, ':');
	s->user = buf;
	s->group = "";
	if (colon) {
		*colon = '\0';
		s->group = colon + 1;
		if (strchr(s->group, ':'))
			return husk_err(
			    err, EINVAL,
			    "invalid user spec '%s:%s': more than one "
			    "':'",
			    s->user, s->group);
	}
	int rc = parse_id(s->user, &s->uid);
	if (rc < 0)
		return husk_err(err, EINVAL, "uid '%s' out of range", s->user);
	s->user_numeric = rc == 1;
	rc = parse_id(s->group, &s->gid);
	if (rc < 0)
		return husk_err(err, EINVAL, "gid '%s' out of range", s->group);
	s->group_numeric = rc == 1;
	return 0;
}

/* ---- reading the files ---- */

/* What goes between root and "etc/..." in messages: "/etc/passwd", not
 * "//etc/passwd", after pivot_root. */
static const char *sep(const char *root)
{
	size_t n = strlen(root);
	return n > 0 && root[n - 1] == '/' ? "" : "/";
}

/* Opens ROOT/rel for reading with symbolic links resolved inside root
 * (before pivot_root an absolute link in the image must not reach the
 * agent's own files). *fd = -1 when the file does not exist. */
static int open_in_root(const char *root, const char *rel, int *fd,
                        struct husk_error *err)
{
	*fd = -1;
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return husk_err_errno(err, errno, "open %s", root);
	const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct open_how how = {
	    .flags = (uint64_t)flags,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int f = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	/* Kernels before 5.6 (or a sandbox that filters openat2): refuse
	 * a link at the last component at least. */
	if (f < 0 && (errno == ENOSYS || errno == EPERM))
		f = openat(dfd, rel, flags | O_NOFOLLOW);
	int e = errno;
	close(dfd);
	if (f < 0) {
		if (e == ENOENT || e == ENOTDIR)
			return 0;
		return husk_err_errno(err, e, "open %s%s%s", root, sep(root),
		                      rel);
	}
	struct stat st;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f);
		/* A FIFO would block, a device never end. */
		return husk_err(err, EINVAL, "%s%s%s is not a regular file",
		                root, sep(root), rel);
	}
	*fd = f;
	return 0;
}

/* Opens ROOT/rel into r; r->f stays NULL when the file is missing. */
static int reader_open(struct line_reader *r, const char *root, const char *rel,
                       struct husk_error *err)
{
	r->f = NULL;
	r->buf = NULL;
	int fd;
	int rc = open_in_root(root, rel, &fd, err);
	if (rc < 0 || fd < 0)
		return rc;
	r->buf = malloc(LINE_CAP);
	r->f = r->buf ? fdopen(fd, "r") : NULL;
	if (!r->f) {
		close(fd);
		free(r->buf);
		r->buf = NULL;
		return husk_err_errno(err, ENOMEM, "reading %s%s%s", root,
		                      sep(root), rel);
	}
	return 0;
}

static void reader_close(struct line_reader *r)
{
	if (r->f)
		fclose(r->f);
	free(r->buf);
	r->f = NULL;
	r->buf = NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Reads one line into r->buf. Returns false at the end of the file; sets
 * *bad for a line that is too long or holds a NUL (it is consumed whole,
 * so that its tail cannot pass for an entry of its own). */
static bool read_line(struct line_reader *r, bool *bad)
{
	size_t n = 0;
	int c;
	*bad = false;
	while ((c = getc_unlocked(r->f)) != EOF && c != '\n') {
		if (c == '\0' || n == LINE_CAP - 1)
			*bad = true;
		else
			r->buf[n++] = (char)c;
	}
	r->buf[n] = '\0';
	return c != EOF || n > 0 || *bad;
}

/* The next line worth parsing (trimmed, not blank, not a comment), or
 * NULL at the end of the file (or when it is missing). */
static char *next_line(struct line_reader *r)
{
	if (!r->f)
		return NULL;
	bool bad;
	while (read_line(r, &bad)) {
		char *line = trim(r->buf);
		if (!bad && *line && *line != '#')
			return line;
	}
	return NULL;
}

/* Splits line at ':' into at most max fields; returns how many. */
static size_t split_fields(char *line, char **field, size_t max)
{
	size_t n = 0;
	while (n < max) {
		field[n++] = line;
		line = strchr(line, ':');
		if (!line)
			break;
		*line++ = '\0';
	}
	return n;
}

/* A number field of an entry: must be a valid id, not empty (runc would
 * read garbage as 0, which is root). */
static bool field_id(const char *s, uint32_t *out)
{
	return parse_id(s, out) == 1;
}

/* name:password:uid:gid:gecos:home:shell; gecos onwards may be missing. */
static bool parse_pw(char *line, struct pw_entry *pw)
{
	char *f[7];
	size_t n = split_fields(line, f, 7);
	uint32_t uid, gid;
	if (n < 4 || !*f[0] || !field_id(f[2], &uid) || !field_id(f[3], &gid))
		return false;
	pw->name = f[0];
	pw->uid = uid;
	pw->gid = gid;
	pw->home = n > 5 ? f[5] : "";
	return true;
}

/* name:password:gid:member,member; members may be missing. */
static bool parse_gr(char *line, struct gr_entry *gr)
{
	char *f[4];
	size_t n = split_fields(line, f, 4);
	uint32_t gid;
	if (n < 3 || !*f[0] || !field_id(f[2], &gid))
		return false;
	gr->name = f[0];
	gr->gid = gid;
	gr->members = n > 3 ? f[3] : (char *)"";
	return true;
}

static bool lists_member(char *members, const char *name)
{
	char *save = NULL;
	for (char *m = strtok_r(members, ",", &save); m;
	     m = strtok_r(NULL, ",", &save))
		if (strcmp(trim(m), name) == 0)
			return true;
	return false;
}

/* ---- resolution ---- */

static int copy_home(char *home, size_t cap, const char *dir,
                     struct husk_error *err)
{
	if (!home)
		return 0;
	if (!*dir)
		dir = "/";
	if (strlen(dir) >= cap)
		return husk_err(err, ENAMETOOLONG,
		                "home directory '%s' is too long", dir);
	strcpy(home, dir);
	return 0;
}

static bool pw_matches(const struct pw_entry *pw, const struct spec *s,
                       uid_t want_uid)
{
	if (!*s->user || s->user_numeric)
		return pw->uid == want_uid;
	return strcmp(pw->name, s->user) == 0;
}

/* Finds the user; fills u->uid/gid, home and, when an entry matched, its
 * name (for the supplementary groups; the caller frees it). */
static int find_user(const char *root, const struct spec *s,
                     struct agent_user_cfg *u, char **name, char *home,
                     size_t home_cap, struct husk_error *err)
{
	uid_t want = s->user_numeric ? s->uid : 0;
	struct line_reader r;
	int rc = reader_open(&r, root, "etc/passwd", err);
	if (rc < 0)
		return rc;

	bool found = false;
	struct pw_entry pw;
	for (char *line; (line = next_line(&r));) {
		if (parse_pw(line, &pw) && pw_matches(&pw, s, want)) {
			found = true;
			break;
		}
	}
	*name = NULL;
	if (found) {
		u->uid = pw.uid;
		u->gid = pw.gid;
		*name = strdup(pw.name);
		rc = *name
		         ? copy_home(home, home_cap, pw.home, err)
		         : husk_err(err, ENOMEM, "resolving user %s", s->user);
	} else if (*s->user && !s->user_numeric) {
		rc = husk_err(err, ENOENT,
		              "unable to find user %s: no matching entries in "
		              "passwd file",
		              s->user);
	} else {
		u->uid = want;
		u->gid = 0;
		rc = copy_home(home, home_cap, "/", err);
	}
	reader_close(&r);
	return rc;
}

static int add_group(struct agent_user_cfg *u, gid_t gid, const char *user,
                     struct husk_error *err)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == gid)
			return 0;
	if (u->ngroups == AGENT_MAX_GROUPS)
		return husk_err(err, E2BIG, "user %s is in more than %d groups",
		                user, AGENT_MAX_GROUPS);
	u->groups[u->ngroups++] = gid;
	return 0;
}

/* With an explicit group: its gid. Without: the groups that list name. */
static int find_groups(const char *root, const struct spec *s, const char *name,
                       struct agent_user_cfg *u, struct husk_error *err)
{
	u->ngroups = 0;
	if (*s->group && s->group_numeric) {
		u->gid = s->gid;
		return 0;
	}
	if (!*s->group && !name)
		return 0;

	struct line_reader r;
	int rc = reader_open(&r, root, "etc/group", err);
	if (rc < 0)
		return rc;
	bool found = false;
	struct gr_entry gr;
	for (char *line; rc == 0 && !found && (line = next_line(&r));) {
		if (!parse_gr(line, &gr))
			continue;
		if (*s->group)
			found = strcmp(gr.name, s->group) == 0;
		else if (lists_member(gr.members, name))
			rc = add_group(u, gr.gid, name, err);
	}
	reader_close(&r);
	if (rc < 0 || !*s->group)
		return rc;
	if (!found)
		return husk_err(
		    err, ENOENT,
		    "unable to find group %s: no matching entries in "
		    "group file",
		    s->group);
	u->gid = gr.gid;
	return 0;
}

/* With a numeric request: only the home directory, from the uid's entry. */
static int find_home(const char *root, uid_t uid, char *home, size_t cap,
                     struct husk_error *err)
{
	struct line_reader r;
	int rc = reader_open(&r, root, "etc/passwd", err);
	if (rc < 0)
		return rc;
	const char *dir = "/";
	struct pw_entry pw;
	for (char *line; (line = next_line(&r));) {
		if (parse_pw(line, &pw) && pw.uid == uid) {
			dir = pw.home;
			break;
		}
	}
	rc = copy_home(home, cap, dir, err);
	reader_close(&r);
	return rc;
}

int confine_resolve_user(const char *root, struct agent_user_cfg *u, char *home,
                         size_t home_cap, struct husk_error *err)
{
	if (u->has_uid) {
		if (u->ngroups > AGENT_MAX_GROUPS)
			return husk_err(err, EINVAL, "too many groups");
		return find_home(root, u->uid, home, home_cap, err);
	}

	char buf[sizeof(u->user)];
	if (memchr(u->user, '\0', sizeof(u->user)) == NULL)
		return husk_err(err, EINVAL, "user spec is not terminated");
	strcpy(buf, u->user);
	struct spec s;
	int rc = parse_spec(buf, &s, err);
	if (rc < 0)
		return rc;

	/* A copy: u is only written once everything resolved. */
	struct agent_user_cfg out = *u;
	char *name = NULL;
	rc = find_user(root, &s, &out, &name, home, home_cap, err);
	if (rc == 0)
		rc = find_groups(root, &s, name, &out, err);
	free(name);
	if (rc == 0)
		*u = out;
	return rc;
}
