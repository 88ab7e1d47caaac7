/* Registry credentials: docker-style JSON files, read for pulls and
 * written by login and logout. husk's own file first, then Docker's (only
 * when the caller did not name a file), as registry.h describes. Writes
 * keep every other key of the file and replace it atomically, 0600. */
#include "registry_int.h"
#include "husk/io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest credentials file read. */
#define CREDS_FILE_MAX (1u << 20)

char *reg_base64(const void *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Decodes padded base64 into a malloc'd NUL-terminated string. */
static char *base64_decode(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n % 4 || n > CREDS_FILE_MAX)
		return NULL;
	unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	len -= (s[n - 1] == '=') + (s[n - 2] == '=');
	out[len] = '\0';
	if (memchr(out, '\0', (size_t)len)) {
		free(out);
		return NULL;
	}
	return (char *)out;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

static int path_into(char *out, size_t cap, struct husk_error *err,
                     const char *a, const char *b)
{
	if ((size_t)snprintf(out, cap, "%s%s", a, b) >= cap)
		return husk_err(err, ENOSPC, "credentials path too long");
	return 0;
}

int husk_registry_auth_path(const struct husk_pull_opts *o, char *out,
                            size_t cap, struct husk_error *err)
{
	if (o && o->auth_file && *o->auth_file)
		return path_into(out, cap, err, o->auth_file, "");
	const char *env = getenv("HUSK_AUTH_FILE");
	if (env && *env)
		return path_into(out, cap, err, env, "");
	const char *home = home_dir();
	if (!home)
		return husk_err(err, ENOENT,
		                "no home directory for the "
		                "credentials file; set "
		                "HUSK_AUTH_FILE");
	return path_into(out, cap, err, home, "/.config/husk/auth.json");
}

/* Docker's config.json, or "" when there is no home to find it in. */
static void docker_config_path(char *out, size_t cap)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = home_dir();
	out[0] = '\0';
	if (dir && *dir)
		snprintf(out, cap, "%s/config.json", dir);
	else if (home)
		snprintf(out, cap, "%s/.docker/config.json", home);
}

/* Parses the JSON file at path into *root; *root NULL when absent. */
static int read_json_file(const char *path, json_object **root,
                          struct husk_error *err)
{
	*root = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", path);
	struct stat st;
	char *buf = NULL;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = husk_err_errno(err, errno, "stat %s", path);
	else if (!S_ISREG(st.st_mode) || st.st_size > CREDS_FILE_MAX)
		rc = husk_err(err, EINVAL, "%s: not a credentials file", path);
	else if (!(buf = calloc(1, (size_t)st.st_size + 1)))
		rc = husk_err(err, ENOMEM, "out of memory");
	size_t len = 0;
	while (rc == 0 && len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = husk_err_errno(err, errno, "read %s", path);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (rc == 0 && len == 0) {
		*root = json_object_new_object(); /* empty file: no entries */
	} else if (rc == 0) {
		*root = json_tokener_parse(buf);
		if (!*root || !json_object_is_type(*root, json_type_object))
			rc = husk_err(err, EINVAL, "%s is not a JSON object",
			              path);
	}
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	if (rc < 0) {
		json_object_put(*root);
		*root = NULL;
	}
	return rc;
}

static bool is_docker_hub(const char *h)
{
	return strcasecmp(h, "docker.io") == 0 ||
	       strcasecmp(h, "index.docker.io") == 0 ||
	       strcasecmp(h, "registry-1.docker.io") == 0 ||
	       strcasecmp(h, "registry.hub.docker.com") == 0;
}

/* "https://index.docker.io/v1/" -> "docker.io"; "http://h:5000/" ->
 * "h:5000". Unchecked: for lookups. */
static void key_host(const char *in, char out[REG_HOST_MAX])
{
	if (strncasecmp(in, "https://", 8) == 0)
		in += 8;
	else if (strncasecmp(in, "http://", 7) == 0)
		in += 7;
	size_t n = strcspn(in, "/");
	if (n >= REG_HOST_MAX)
		n = REG_HOST_MAX - 1;
	memcpy(out, in, n);
	out[n] = '\0';
	if (is_docker_hub(out))
		snprintf(out, REG_HOST_MAX, "docker.io");
}

int reg_login_host(const char *in, char out[REG_HOST_MAX],
                   struct husk_error *err)
{
	key_host(in && *in ? in : "docker.io", out);
	bool ok = out[0] != '\0';
	for (const char *p = out; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr(".-:[]", *p);
	if (!ok)
		return husk_err(err, EINVAL, "invalid registry host '%.100s'",
		                in);
	return 0;
}

static bool key_matches(const char *key, const char *registry)
{
	char k[REG_HOST_MAX], r[REG_HOST_MAX];
	key_host(key, k);
	key_host(registry, r);
	return strcasecmp(k, r) == 0;
}

static const char *member_string(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* One entry's user and password, from "auth" or "username"/"password".
 * Returns 1 when found, 0 when the entry holds none (Docker leaves {}
 * behind for credential helpers). */
static int entry_creds(json_object *entry, const char *path, const char *key,
                       char **user, char **pass, struct husk_error *err)
{
	const char *auth = member_string(entry, "auth");
	if (auth && *auth) {
		char *pair = base64_decode(auth);
		char *colon = pair ? strchr(pair, ':') : NULL;
		if (!colon) {
			free(pair);
			return husk_err(err, EINVAL,
			                "%s: the auth of '%.100s' is not "
			                "base64 of user:password",
			                path, key);
		}
		*colon = '\0';
		*user = strdup(pair);
		*pass = strdup(colon + 1);
		explicit_bzero(pair,
		               strlen(colon + 1) + (size_t)(colon - pair));
		free(pair);
	} else {
		const char *u = member_string(entry, "username");
		const char *p = member_string(entry, "password");
		if (!u || !*u || !p)
			return 0;
		*user = strdup(u);
		*pass = strdup(p);
	}
	if (!*user || !*pass) {
		free(*user);
		free(*pass);
		*user = *pass = NULL;
		return husk_err(err, ENOMEM, "out of memory");
	}
	return 1;
}

/* Looks registry up in the file at path: 1 found, 0 not, <0 error. */
static int lookup_file(const char *path, const char *registry, char **user,
                       char **pass, struct husk_error *err)
{
	json_object *root, *auths;
	int rc = read_json_file(path, &root, err);
	if (rc < 0 || !root)
		return rc;
	if (json_object_object_get_ex(root, "auths", &auths) &&
	    json_object_is_type(auths, json_type_object)) {
		json_object_object_foreach(auths, key, entry)
		{
			if (rc != 0 || !key_matches(key, registry) ||
			    !json_object_is_type(entry, json_type_object))
				continue;
			rc = entry_creds(entry, path, key, user, pass, err);
		}
	}
	json_object_put(root);
	return rc;
}

int reg_creds_lookup(const struct husk_pull_opts *o, const char *registry,
                     char **user, char **pass, struct husk_error *err)
{
	*user = *pass = NULL;
	char path[PATH_MAX];
	int rc = husk_registry_auth_path(o, path, sizeof(path), NULL);
	if (rc == 0)
		rc = lookup_file(path, registry, user, pass, err);
	else
		rc = 0; /* no home: no husk file to read */
	const char *env = getenv("HUSK_AUTH_FILE");
	bool named = (o && o->auth_file && *o->auth_file) || (env && *env);
	if (rc == 0 && !named) {
		docker_config_path(path, sizeof(path));
		if (path[0])
			rc = lookup_file(path, registry, user, pass, err);
	}
	return rc < 0 ? rc : 0;
}

/* ---- writing ---- */

/* mkdir -p for the file's directory, new directories 0700. */
static int make_parent(const char *path, struct husk_error *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return husk_err_errno(err, errno, "mkdir %s", dir);
		*p = c;
		if (!c)
			return 0;
	}
}

/* Writes root to path: a 0600 temp file beside it, fsync, rename. */
static int write_json_file(const char *path, json_object *root,
                           struct husk_error *err)
{
	int rc = make_parent(path, err);
	if (rc < 0)
		return rc;
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    sizeof(tmp))
		return husk_err(err, ENAMETOOLONG, "%s: path too long", path);
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return husk_err_errno(err, errno, "create %s", tmp);
	const char *text = json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = husk_write_all(fd, text, strlen(text));
	if (rc == 0)
		rc = husk_write_all(fd, "\n", 1);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return husk_err_errno(err, -rc, "write %s", path);
	}
	return 0;
}

/* Removes every entry of auths that names host; returns how many. */
static int remove_host(json_object *auths, const char *host)
{
	int n = 0;
	for (bool again = true; again;) {
		again = false;
		json_object_object_foreach(auths, key, v)
		{
			(void)v;
			if (key_matches(key, host)) {
				json_object_object_del(auths, key);
				n++;
				again = true; /* the iteration is invalid now */
				break;
			}
		}
	}
	return n;
}

/* Reads husk's file (or starts one) and finds its "auths" object. */
static int open_auths(const struct husk_pull_opts *o, char *path, size_t cap,
                      json_object **root, json_object **auths,
                      struct husk_error *err)
{
	int rc = husk_registry_auth_path(o, path, cap, err);
	if (rc == 0)
		rc = read_json_file(path, root, err);
	if (rc < 0)
		return rc;
	if (!*root && !(*root = json_object_new_object()))
		return husk_err(err, ENOMEM, "out of memory");
	if (!json_object_object_get_ex(*root, "auths", auths)) {
		*auths = json_object_new_object();
		if (!*auths ||
		    json_object_object_add(*root, "auths", *auths) < 0)
			return husk_err(err, ENOMEM, "out of memory");
	}
	if (!json_object_is_type(*auths, json_type_object))
		return husk_err(err, EINVAL, "%s: \"auths\" is not an object",
		                path);
	return 0;
}

static int store_creds(const struct husk_pull_opts *o, const char *host,
                       const char *user, const char *pass,
                       struct husk_error *err)
{
	char path[PATH_MAX];
	json_object *root = NULL, *auths;
	int rc = open_auths(o, path, sizeof(path), &root, &auths, err);
	size_t n = strlen(user) + 1 + strlen(pass);
	char *pair = rc == 0 ? malloc(n + 1) : NULL;
	char *b64 = NULL;
	if (pair) {
		snprintf(pair, n + 1, "%s:%s", user, pass);
		b64 = reg_base64(pair, n);
		explicit_bzero(pair, n);
	}
	json_object *entry = b64 ? json_object_new_object() : NULL;
	if (rc == 0 && !entry)
		rc = husk_err(err, ENOMEM, "out of memory");
	if (rc == 0) {
		json_object_object_add(entry, "auth",
		                       json_object_new_string(b64));
		remove_host(auths, host);
		json_object_object_add(auths, host, entry);
		rc = write_json_file(path, root, err);
	}
	free(pair);
	if (b64) {
		explicit_bzero(b64, strlen(b64));
		free(b64);
	}
	json_object_put(root);
	return rc;
}

int husk_registry_login(const char *host, const char *user,
                        const char *password, const struct husk_pull_opts *o,
                        struct husk_error *err)
{
	char name[REG_HOST_MAX];
	int rc = reg_login_host(host, name, err);
	if (rc < 0)
		return rc;
	if (!user || !*user || strchr(user, ':'))
		return husk_err(err, EINVAL,
		                "login: the user name must be "
		                "non-empty and without ':'");
	if (!password || !*password)
		return husk_err(err, EINVAL, "login: empty password");
	struct husk_pull_opts defaults = {0};
	if (!o)
		o = &defaults;
	const char *api = strcmp(name, HUSK_REF_DOCKER_HUB) == 0
	                      ? HUSK_REF_DOCKER_HUB_API
	                      : name;
	struct reg_client c;
	rc = reg_client_init(&c, name, api, "", o, err);
	if (rc == 0 &&
	    (!(c.user = strdup(user)) || !(c.pass = strdup(password))))
		rc = husk_err(err, ENOMEM, "out of memory");
	if (rc == 0)
		rc = reg_authenticate(&c, true, err);
	reg_client_free(&c);
	if (rc == 0)
		rc = store_creds(o, name, user, password, err);
	return rc;
}

int husk_registry_logout(const char *host, const struct husk_pull_opts *o,
                         struct husk_error *err)
{
	char name[REG_HOST_MAX], path[PATH_MAX];
	json_object *root = NULL, *auths;
	int rc = reg_login_host(host, name, err);
	if (rc == 0)
		rc = open_auths(o, path, sizeof(path), &root, &auths, err);
	if (rc == 0 && remove_host(auths, name) == 0)
		rc = husk_err(err, ENOENT, "not logged in to %s", name);
	if (rc == 0)
		rc = write_json_file(path, root, err);
	json_object_put(root);
	return rc;
}
