/* libFuzzer target for the registry's manifest and index decoding
 * (src/lib/registry_manifest.c): what a hostile registry serves as a
 * manifest body.
 *
 * Input byte 0 picks the Content-Type the body came with (its low 4 bits:
 * the four types husk asks for, schema 1, with parameters, unknown, none)
 * and the platform wanted (its high 4 bits); the rest is the body. The
 * body is decoded as husk_pull does, then parsed as an image manifest or
 * searched for the platform as an index, and every success is checked
 * against the contract: a decoded document is an object of the kind its
 * types say, a parsed manifest's descriptors are sha256 digests with sane
 * sizes and known media types, and an index entry picked is an image
 * manifest. A failure leaves no document behind and says why.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_manifest.c \
 *     src/lib/registry_*.c src/lib/layer*.c src/lib/store*.c \
 *     src/lib/reference.c src/lib/error.c \
 *     -lcrypto -larchive -ljson-c -lcurl -o /tmp/fuzz_manifest
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../src/lib/registry_int.h"
#include "husk/layer.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

static const char *const content_types[16] = {
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    OCI_MANIFEST "; charset=utf-8",
    OCI_INDEX "\t;x=y",
    "application/json",
    "text/plain",
    "",
    NULL,
    "application/vnd.oci.image.manifest.v1+json+x",
    DOCKER_LIST " ",
    OCI_CONFIG,
    "application/vnd.oci.image.index.v1+jsonx;" OCI_INDEX,
};

static const char *const platforms[16] = {
    "linux/amd64",   "linux/arm64",    "linux/arm64/v8", "linux/arm/v7",
    "linux/arm/v6",  "linux/386",      "linux/x86_64",   "linux/aarch64",
    "windows/amd64", "linux/ppc64le",  "linux/s390x",    "linux/riscv64",
    "Linux/AMD64",   "linux/arm64/v9", "darwin/arm64",   "linux/i686",
};

static bool is_manifest_type(const char *mt)
{
	return strcmp(mt, OCI_MANIFEST) == 0 ||
	       strcmp(mt, DOCKER_MANIFEST) == 0;
}

static void check_error(int rc, const struct husk_error *err)
{
	CHECK(rc < 0);
	CHECK(err->code == -rc && err->msg[0]);
	CHECK(memchr(err->msg, '\0', sizeof(err->msg)));
}

static void check_desc(const struct reg_desc *d)
{
	CHECK(husk_digest_valid(d->digest));
	CHECK(d->size >= 0 && d->size < INT64_MAX);
	CHECK(memchr(d->media_type, '\0', sizeof(d->media_type)));
}

static void parse_manifest(json_object *root)
{
	struct reg_manifest m;
	struct husk_error err = {0};
	int rc = reg_manifest_parse(root, &m, &err);
	if (rc < 0) {
		check_error(rc, &err);
		CHECK(!m.layers && m.n_layers == 0);
		return;
	}
	CHECK(rc == 0);
	check_desc(&m.config);
	CHECK(strcmp(m.config.media_type, OCI_CONFIG) == 0 ||
	      strcmp(m.config.media_type, DOCKER_CONFIG) == 0);
	CHECK(m.config.size <= REG_CONFIG_MAX);
	CHECK(m.n_layers <= REG_MAX_LAYERS);
	CHECK(m.n_layers == 0 || m.layers);
	for (size_t i = 0; i < m.n_layers; i++) {
		check_desc(&m.layers[i]);
		CHECK(husk_layer_check_media_type(m.layers[i].media_type,
		                                  NULL) >= 0);
	}
	reg_manifest_free(&m);
	CHECK(!m.layers && m.n_layers == 0);
}

static void select_platform(json_object *root, const char *platform)
{
	struct reg_platform want;
	struct reg_desc d;
	struct husk_error err = {0};
	char again[100];
	CHECK(reg_platform_parse(platform, &want, &err) == 0);
	reg_platform_string(&want, again, sizeof(again));
	CHECK(strchr(again, '/'));
	int rc = reg_index_select(root, &want, &d, &err);
	if (rc < 0) {
		check_error(rc, &err);
		return;
	}
	CHECK(rc == 0);
	check_desc(&d);
	CHECK(is_manifest_type(d.media_type));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_error err = {0};
	enum reg_kind kind;
	json_object *root = (json_object *)1;

	if (size < 1)
		return 0;
	const char *ctype = content_types[data[0] & 15];
	const char *platform = platforms[data[0] >> 4];
	/* The body, exactly as long as the input says: libFuzzer's copy
	 * ends there, so reading past it is an ASan report. */
	int rc = reg_manifest_decode(ctype, (const char *)data + 1, size - 1,
	                             &kind, &root, &err);
	if (rc < 0) {
		check_error(rc, &err);
		CHECK(root == NULL);
		return 0;
	}
	CHECK(rc == 0 && root);
	CHECK(json_object_is_type(root, json_type_object));
	CHECK(kind == REG_KIND_MANIFEST || kind == REG_KIND_INDEX);
	/* The kind is the one the document's own mediaType says, if any. */
	json_object *mt = NULL;
	if (json_object_object_get_ex(root, "mediaType", &mt) &&
	    json_object_is_type(mt, json_type_string))
		CHECK(is_manifest_type(json_object_get_string(mt)) ==
		      (kind == REG_KIND_MANIFEST));
	if (kind == REG_KIND_MANIFEST) {
		parse_manifest(root);
	} else {
		select_platform(root, platform);
		/* A variant asked for, and none. */
		select_platform(root, "linux/arm/v7");
		select_platform(root, "linux/arm64");
	}
	json_object_put(root);
	return 0;
}
