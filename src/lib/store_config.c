/* Image configs (OCI image-spec "application/vnd.oci.image.config.v1+json",
 * the same shape as Docker's): what `husk run IMAGE` starts and with what
 * environment. The JSON comes from registries and archives, so every
 * field is type-checked; missing and null fields are simply absent. */
#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define PFX "image config: "

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void husk_image_config_free(struct husk_image_config *cfg)
{
	if (!cfg)
		return;
	strv_free(cfg->entrypoint);
	strv_free(cfg->cmd);
	strv_free(cfg->env);
	strv_free(cfg->diff_ids);
	free(cfg->working_dir);
	free(cfg->user);
	free(cfg->stop_signal);
	memset(cfg, 0, sizeof(*cfg));
}

/* The member key of o, or NULL when absent or JSON null. */
static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* A JSON string as C: refused when it holds a NUL, which C would cut. */
static int c_string(json_object *v, const char *name, const char **out,
                    struct husk_error *err)
{
	if (!json_object_is_type(v, json_type_string))
		return husk_err(err, EINVAL, PFX "%s must be a string", name);
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return husk_err(err, EINVAL, PFX "%s contains a NUL byte",
		                name);
	return 0;
}

static int opt_string(json_object *o, const char *key, const char *name,
                      char **out, struct husk_error *err)
{
	json_object *v = member(o, key);
	const char *s;
	if (!v)
		return 0;
	int rc = c_string(v, name, &s, err);
	if (rc == 0 && !(*out = strdup(s)))
		rc = husk_err(err, ENOMEM, PFX "out of memory");
	return rc;
}

static int opt_fixed(json_object *o, const char *key, char *dst, size_t cap,
                     struct husk_error *err)
{
	json_object *v = member(o, key);
	const char *s;
	if (!v)
		return 0;
	int rc = c_string(v, key, &s, err);
	if (rc == 0 && strlen(s) >= cap)
		rc = husk_err(err, EINVAL, PFX "%s is too long", key);
	if (rc == 0)
		memcpy(dst, s, strlen(s) + 1);
	return rc;
}

/* A list of strings; with one_string, a lone string is a one-item list
 * (Docker's strslice). digests: every item must be a sha256 digest. */
static int opt_list(json_object *o, const char *key, const char *name,
                    bool one_string, bool digests, char ***out, size_t *n,
                    struct husk_error *err)
{
	json_object *v = member(o, key);
	if (!v)
		return 0;
	bool single = one_string && json_object_is_type(v, json_type_string);
	if (!single && !json_object_is_type(v, json_type_array))
		return husk_err(err, EINVAL, PFX "%s must be a list of strings",
		                name);
	size_t len = single ? 1 : json_object_array_length(v);
	char **list = calloc(len + 1, sizeof(char *));
	if (!list)
		return husk_err(err, ENOMEM, PFX "out of memory");
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < len; i++) {
		json_object *item =
		    single ? v : json_object_array_get_idx(v, i);
		const char *s;
		if (!item || !json_object_is_type(item, json_type_string))
			rc = husk_err(err, EINVAL,
			              PFX "%s must be a list of strings", name);
		else if ((rc = c_string(item, name, &s, err)) < 0)
			break;
		else if (digests && !husk_digest_valid(s))
			rc = husk_err(err, EINVAL,
			              PFX "%s: invalid digest '%s'", name, s);
		else if (!(list[i] = strdup(s)))
			rc = husk_err(err, ENOMEM, PFX "out of memory");
	}
	if (rc < 0) {
		strv_free(list);
		return rc;
	}
	*out = list;
	*n = len;
	return 0;
}

static int opt_object(json_object *o, const char *key, json_object **out,
                      struct husk_error *err)
{
	*out = member(o, key);
	if (*out && !json_object_is_type(*out, json_type_object))
		return husk_err(err, EINVAL, PFX "%s must be an object", key);
	return 0;
}

static int parse_process(json_object *c, struct husk_image_config *cfg,
                         struct husk_error *err)
{
	int rc = opt_list(c, "Entrypoint", "config.Entrypoint", true, false,
	                  &cfg->entrypoint, &cfg->n_entrypoint, err);
	if (rc == 0)
		rc = opt_list(c, "Cmd", "config.Cmd", true, false, &cfg->cmd,
		              &cfg->n_cmd, err);
	if (rc == 0)
		rc = opt_list(c, "Env", "config.Env", false, false, &cfg->env,
		              &cfg->n_env, err);
	if (rc == 0)
		rc = opt_string(c, "WorkingDir", "config.WorkingDir",
		                &cfg->working_dir, err);
	if (rc == 0)
		rc = opt_string(c, "User", "config.User", &cfg->user, err);
	if (rc == 0)
		rc = opt_string(c, "StopSignal", "config.StopSignal",
		                &cfg->stop_signal, err);
	return rc;
}

static int parse_rootfs(json_object *root, struct husk_image_config *cfg,
                        struct husk_error *err)
{
	json_object *rootfs;
	int rc = opt_object(root, "rootfs", &rootfs, err);
	json_object *type = member(rootfs, "type");
	const char *t;
	if (rc == 0 && type &&
	    (rc = c_string(type, "rootfs.type", &t, err)) == 0 &&
	    strcmp(t, "layers") != 0)
		rc = husk_err(err, EINVAL,
		              PFX "rootfs.type '%s' is not 'layers'", t);
	if (rc == 0)
		rc = opt_list(rootfs, "diff_ids", "rootfs.diff_ids", false,
		              true, &cfg->diff_ids, &cfg->n_diff_ids, err);
	return rc;
}

static int parse_root(json_object *root, struct husk_image_config *cfg,
                      struct husk_error *err)
{
	if (!json_object_is_type(root, json_type_object))
		return husk_err(err, EINVAL, PFX "not a JSON object");
	json_object *c;
	int rc = opt_fixed(root, "architecture", cfg->architecture,
	                   sizeof(cfg->architecture), err);
	if (rc == 0)
		rc = opt_fixed(root, "os", cfg->os, sizeof(cfg->os), err);
	if (rc == 0)
		rc = opt_fixed(root, "variant", cfg->variant,
		               sizeof(cfg->variant), err);
	if (rc == 0)
		rc = opt_fixed(root, "created", cfg->created,
		               sizeof(cfg->created), err);
	if (rc == 0)
		rc = opt_object(root, "config", &c, err);
	if (rc == 0)
		rc = parse_process(c, cfg, err);
	if (rc == 0)
		rc = parse_rootfs(root, cfg, err);
	return rc;
}

static int trailing_garbage(const char *json, size_t len, size_t end)
{
	for (size_t i = end; i < len; i++)
		if (!strchr(" \t\r\n", json[i]))
			return 1;
	return 0;
}

int husk_image_config_parse(const char *json, size_t len,
                            struct husk_image_config *cfg,
                            struct husk_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	if (len > STORE_META_MAX)
		return husk_err(err, EFBIG, PFX "larger than %u bytes",
		                STORE_META_MAX);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return husk_err(err, ENOMEM, PFX "out of memory");
	json_object *root = json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	int rc = 0;
	if (!root || jerr != json_tokener_success)
		rc = husk_err(err, EINVAL, PFX "invalid JSON: %s",
		              jerr == json_tokener_continue
		                  ? "unexpected end"
		                  : json_tokener_error_desc(jerr));
	else if (trailing_garbage(json, len, json_tokener_get_parse_end(tok)))
		rc = husk_err(err, EINVAL,
		              PFX "invalid JSON: data after the "
		                  "object");
	json_tokener_free(tok);
	if (rc == 0)
		rc = parse_root(root, cfg, err);
	json_object_put(root);
	if (rc < 0)
		husk_image_config_free(cfg);
	return rc;
}

int husk_store_image_config(struct husk_store *s, const struct husk_image *img,
                            struct husk_image_config *cfg,
                            struct husk_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	char *text;
	size_t len;
	int rc = husk_store_blob_read(s, img->config_digest, STORE_META_MAX,
	                              &text, &len, err);
	if (rc < 0)
		return rc;
	rc = husk_image_config_parse(text, len, cfg, err);
	free(text);
	return rc;
}
