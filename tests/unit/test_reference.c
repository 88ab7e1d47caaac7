/* Image references (Docker's normalisation) and digest helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/reference.h"

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG_A "sha256:" HEX_A

struct valid_case {
	const char *in;
	const char *registry, *repository, *tag, *digest;
	const char *full, *familiar;
};

static const struct valid_case valid[] = {
    {"busybox", "docker.io", "library/busybox", "latest", "",
     "docker.io/library/busybox:latest", "busybox:latest"},
    {"user/app", "docker.io", "user/app", "latest", "",
     "docker.io/user/app:latest", "user/app:latest"},
    {"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
     "docker.io/library/busybox:latest", "busybox:latest"},
    {"index.docker.io/user/app:v2", "docker.io", "user/app", "v2", "",
     "docker.io/user/app:v2", "user/app:v2"},
    {"docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36",
     "", "docker.io/library/busybox:1.36", "busybox:1.36"},
    {"localhost:5000/app:v1", "localhost:5000", "app", "v1", "",
     "localhost:5000/app:v1", "localhost:5000/app:v1"},
    {"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest",
     "localhost/app:latest"},
    {"127.0.0.1:5000/a/b:tag", "127.0.0.1:5000", "a/b", "tag", "",
     "127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag"},
    {"registry.example.com/x", "registry.example.com", "x", "latest", "",
     "registry.example.com/x:latest", "registry.example.com/x:latest"},
    {"a/b/c/d", "docker.io", "a/b/c/d", "latest", "",
     "docker.io/a/b/c/d:latest", "a/b/c/d:latest"},
    {"library/a/b", "docker.io", "library/a/b", "latest", "",
     "docker.io/library/a/b:latest", "library/a/b:latest"},
    {"foo_bar.baz__qux-x--y", "docker.io", "library/foo_bar.baz__qux-x--y",
     "latest", "", "docker.io/library/foo_bar.baz__qux-x--y:latest",
     "foo_bar.baz__qux-x--y:latest"},
    /* Docker: an uppercase first component is a (case-insensitive) host. */
    {"Foo/bar", "Foo", "bar", "latest", "", "Foo/bar:latest", "Foo/bar:latest"},
    {"[::1]:5000/app", "[::1]:5000", "app", "latest", "",
     "[::1]:5000/app:latest", "[::1]:5000/app:latest"},
    {"my-reg.io:443/team/app:A_b.c-1", "my-reg.io:443", "team/app", "A_b.c-1",
     "", "my-reg.io:443/team/app:A_b.c-1", "my-reg.io:443/team/app:A_b.c-1"},
    {"busybox@" DIG_A, "docker.io", "library/busybox", "", DIG_A,
     "docker.io/library/busybox@" DIG_A, "busybox@" DIG_A},
    {"busybox:1.36@" DIG_A, "docker.io", "library/busybox", "1.36", DIG_A,
     "docker.io/library/busybox:1.36@" DIG_A, "busybox:1.36@" DIG_A},
    {"localhost:5000/app@" DIG_A, "localhost:5000", "app", "", DIG_A,
     "localhost:5000/app@" DIG_A, "localhost:5000/app@" DIG_A},
    /* No '/', so "localhost" is a repository and 5000 its tag. */
    {"localhost:5000", "docker.io", "library/localhost", "5000", "",
     "docker.io/library/localhost:5000", "localhost:5000"},
};

static void parses_and_normalises(void **state)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		const struct valid_case *c = &valid[i];
		struct husk_ref r;
		struct husk_error e = {0};
		char buf[HUSK_REF_STRING_MAX];
		int rc = husk_ref_parse(c->in, &r, &e);
		if (rc != 0)
			fail_msg("%s: %s", c->in, e.msg);
		assert_string_equal(r.registry, c->registry);
		assert_string_equal(r.repository, c->repository);
		assert_string_equal(r.tag, c->tag);
		assert_string_equal(r.digest, c->digest);
		assert_int_equal(husk_ref_string(&r, buf, sizeof(buf)),
		                 (int)strlen(c->full));
		assert_string_equal(buf, c->full);
		assert_true(husk_ref_familiar(&r, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, c->familiar);
		/* The normalised form parses to the same reference. */
		struct husk_ref again;
		husk_ref_string(&r, buf, sizeof(buf));
		assert_int_equal(husk_ref_parse(buf, &again, NULL), 0);
		assert_memory_equal(&r, &again, sizeof(r));
	}
}

struct invalid_case {
	const char *in;
	const char *why; /* substring of the message */
};

static void refuses_malformed(void **state)
{
	char long_tag[140], long_name[300], max_name[300];
	snprintf(long_tag, sizeof(long_tag), "a:%0129d", 0);
	memset(long_name, 'a', 238);
	long_name[238] = '\0'; /* docker.io/library/ + 238 = 256 */
	memset(max_name, 'a', 237);
	max_name[237] = '\0'; /* 255: the most allowed */
	const struct invalid_case cases[] = {
	    {"", "empty"},
	    {"Busybox", "must be lowercase"},
	    {"user/App", "must be lowercase"},
	    {"localhost:5000/App", "must be lowercase"},
	    {"busybox:", "tag"},
	    {":tag", "missing repository"},
	    {"busybox:-x", "tag"},
	    {"busybox:a b", "tag"},
	    {long_tag, "tag"},
	    {"busybox@sha256:abc", "64 lowercase hex"},
	    {"busybox@sha256:" HEX_A "0", "64 lowercase hex"},
	    {"busybox@sha512:" HEX_A HEX_A, "unsupported digest"},
	    {"busybox@" HEX_A, "ALGORITHM:HEX"},
	    {"busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
	     "0123456789abcdef",
	     "64 lowercase hex"},
	    {"a@b@c", "ALGORITHM:HEX"},
	    {"-busybox", "invalid repository name"},
	    {"_x", "invalid repository name"},
	    {"busybox-", "invalid repository name"},
	    {"bu..sy", "invalid repository name"},
	    {"a___b", "invalid repository name"},
	    {"a//b", "invalid repository name"},
	    {"a/", "invalid repository name"},
	    {"/a", "invalid repository name"},
	    {"busybox:tag:x", "invalid repository name"},
	    {"exa_mple.com/x", "invalid registry host"},
	    {"-example.com/x", "invalid registry host"},
	    {"localhost:port/x", "invalid registry host"},
	    {"localhost:/x", "invalid registry host"},
	    {"[zz]:5000/x", "invalid registry host"},
	    {"example.com/", "invalid repository name"},
	    {HEX_A, "64-byte hexadecimal"},
	    {long_name, "255 characters"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_ref r;
		struct husk_error e = {0};
		int rc = husk_ref_parse(cases[i].in, &r, &e);
		if (rc != -EINVAL)
			fail_msg("'%s' gave %d, not -EINVAL", cases[i].in, rc);
		assert_int_equal(e.code, EINVAL);
		if (!strstr(e.msg, cases[i].why))
			fail_msg("'%s': message '%s' lacks '%s'", cases[i].in,
			         e.msg, cases[i].why);
		assert_string_equal(r.repository, "");
	}
	struct husk_ref r;
	assert_int_equal(husk_ref_parse(max_name, &r, NULL), 0);
	assert_int_equal(husk_ref_parse(NULL, &r, NULL), -EINVAL);
}

static void string_reports_short_buffers(void **state)
{
	struct husk_ref r;
	char small[8];
	assert_int_equal(husk_ref_parse("busybox", &r, NULL), 0);
	assert_int_equal(husk_ref_string(&r, small, sizeof(small)), -ENOSPC);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(husk_ref_familiar(&r, small, sizeof(small)), -ENOSPC);
	char name[64];
	assert_true(husk_ref_name(&r, name, sizeof(name)) > 0);
	assert_string_equal(name, "docker.io/library/busybox");
}

static void api_host_for_docker_hub(void **state)
{
	struct husk_ref r;
	assert_int_equal(husk_ref_parse("busybox", &r, NULL), 0);
	assert_string_equal(husk_ref_api_host(&r), "registry-1.docker.io");
	assert_int_equal(husk_ref_parse("localhost:5000/a", &r, NULL), 0);
	assert_string_equal(husk_ref_api_host(&r), "localhost:5000");
}

static void digest_validity(void **state)
{
	assert_true(husk_digest_valid(DIG_A));
	assert_false(husk_digest_valid(NULL));
	assert_false(husk_digest_valid(""));
	assert_false(husk_digest_valid(HEX_A));
	assert_false(husk_digest_valid("sha256:" HEX_A "0"));
	assert_false(husk_digest_valid("sha256:0123"));
	assert_false(husk_digest_valid("sha512:" HEX_A HEX_A));
	assert_false(husk_digest_valid("SHA256:" HEX_A));
	assert_false(husk_digest_valid(
	    "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
	    "0123456789abcdef"));
	assert_string_equal(husk_digest_hex(DIG_A), HEX_A);
	assert_true(husk_hex_prefix_valid("0a1b"));
	assert_true(husk_hex_prefix_valid(HEX_A));
	assert_false(husk_hex_prefix_valid(""));
	assert_false(husk_hex_prefix_valid("0A"));
	assert_false(husk_hex_prefix_valid(HEX_A "0"));
	assert_false(husk_hex_prefix_valid("xyz"));
}

#define SHA_EMPTY                                                              \
	"sha256:"                                                              \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC                                                                \
	"sha256:"                                                              \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void sha256_of_buffers_fds_and_streams(void **state)
{
	char d[HUSK_DIGEST_MAX];
	assert_int_equal(husk_sha256_buf("", 0, d, NULL), 0);
	assert_string_equal(d, SHA_EMPTY);
	assert_int_equal(husk_sha256_buf("abc", 3, d, NULL), 0);
	assert_string_equal(d, SHA_ABC);
	assert_true(husk_digest_valid(d));

	struct husk_sha256 *h = husk_sha256_new();
	assert_non_null(h);
	assert_int_equal(husk_sha256_update(h, "a", 1), 0);
	assert_int_equal(husk_sha256_update(h, "bc", 2), 0);
	assert_int_equal(husk_sha256_final(h, d), 0);
	husk_sha256_free(h);
	assert_string_equal(d, SHA_ABC);

	char path[] = "/tmp/husk-ref.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "xabc", 4), 4);
	assert_int_equal(lseek(fd, 1, SEEK_SET), 1);
	uint64_t size = 0;
	assert_int_equal(husk_sha256_fd(fd, d, &size, NULL), 0);
	assert_string_equal(d, SHA_ABC);
	assert_int_equal(size, 3);
	close(fd);
	struct husk_error e = {0};
	assert_int_equal(husk_sha256_fd(-1, d, NULL, &e), -EBADF);
	assert_non_null(strstr(e.msg, "sha256"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_and_normalises),
	    cmocka_unit_test(refuses_malformed),
	    cmocka_unit_test(string_reports_short_buffers),
	    cmocka_unit_test(api_host_for_docker_hub),
	    cmocka_unit_test(digest_validity),
	    cmocka_unit_test(sha256_of_buffers_fds_and_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
