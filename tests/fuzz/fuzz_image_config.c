/* libFuzzer target for the image config parser (src/lib/store_config.c):
 * the config JSON a registry or an archive hands over, which decides what
 * `husk run IMAGE` starts.
 *
 * The input is the JSON itself. On success the result is checked against
 * the contract of include/husk/store.h: every list is NULL-terminated
 * after exactly its count of strings (NULL with count 0 when absent), the
 * fixed fields are terminated, diff_ids are sha256 digests, a rootfs.type
 * other than "layers" was refused. On failure nothing is left allocated
 * (cfg is zeroed) and the error says why. Either way a second parse of
 * the same bytes gives the same answer.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_image_config.c \
 *     src/lib/store*.c src/lib/reference.c src/lib/error.c \
 *     -lcrypto -ljson-c -o /tmp/fuzz_image_config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "husk/store.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(char **v, size_t n, bool digests)
{
	if (!v) {
		CHECK(n == 0);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		CHECK(v[i]);
		CHECK(!digests || husk_digest_valid(v[i]));
	}
	CHECK(v[n] == NULL);
}

static void check_fixed(const char *s, size_t cap)
{
	CHECK(memchr(s, '\0', cap));
}

static void check_config(const struct husk_image_config *c)
{
	check_list(c->entrypoint, c->n_entrypoint, false);
	check_list(c->cmd, c->n_cmd, false);
	check_list(c->env, c->n_env, false);
	check_list(c->diff_ids, c->n_diff_ids, true);
	check_fixed(c->os, sizeof(c->os));
	check_fixed(c->architecture, sizeof(c->architecture));
	check_fixed(c->variant, sizeof(c->variant));
	check_fixed(c->created, sizeof(c->created));
	/* Strings are C strings: touch every byte for ASan. */
	if (c->working_dir)
		CHECK(strlen(c->working_dir) < SIZE_MAX);
	if (c->user)
		CHECK(strlen(c->user) < SIZE_MAX);
	if (c->stop_signal)
		CHECK(strlen(c->stop_signal) < SIZE_MAX);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* The same fields, string for string. */
static bool same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb || !a != !b)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same(const struct husk_image_config *a,
                 const struct husk_image_config *b)
{
	return same_list(a->entrypoint, a->n_entrypoint, b->entrypoint,
	                 b->n_entrypoint) &&
	       same_list(a->cmd, a->n_cmd, b->cmd, b->n_cmd) &&
	       same_list(a->env, a->n_env, b->env, b->n_env) &&
	       same_list(a->diff_ids, a->n_diff_ids, b->diff_ids,
	                 b->n_diff_ids) &&
	       same_str(a->working_dir, b->working_dir) &&
	       same_str(a->user, b->user) &&
	       same_str(a->stop_signal, b->stop_signal) &&
	       strcmp(a->os, b->os) == 0 &&
	       strcmp(a->architecture, b->architecture) == 0 &&
	       strcmp(a->variant, b->variant) == 0 &&
	       strcmp(a->created, b->created) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_image_config cfg, again;
	struct husk_error err = {0}, err2 = {0};

	/* Garbage in cfg: the parser must not trust what was there. */
	memset(&cfg, 0xa5, sizeof(cfg));
	int rc = husk_image_config_parse((const char *)data, size, &cfg, &err);
	int rc2 =
	    husk_image_config_parse((const char *)data, size, &again, &err2);
	CHECK(rc == rc2);
	if (rc < 0) {
		CHECK(err.code == -rc && err.msg[0]);
		CHECK(strcmp(err.msg, err2.msg) == 0);
		CHECK(all_zero(&cfg, sizeof(cfg)));
		CHECK(all_zero(&again, sizeof(again)));
		return 0;
	}
	CHECK(rc == 0);
	check_config(&cfg);
	CHECK(same(&cfg, &again));
	husk_image_config_free(&cfg);
	husk_image_config_free(&again);
	CHECK(all_zero(&cfg, sizeof(cfg)));
	/* Freeing twice is harmless (the struct is zeroed); NULL too. */
	husk_image_config_free(&cfg);
	husk_image_config_free(NULL);
	return 0;
}
