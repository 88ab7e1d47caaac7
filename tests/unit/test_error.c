#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "husk/error.h"

static void returns_negative_code_and_message(void **state)
{
	struct husk_error e = {0};
	assert_int_equal(husk_err(&e, EINVAL, "bad --cpus '%s'", "x"), -EINVAL);
	assert_int_equal(e.code, EINVAL);
	assert_string_equal(e.msg, "bad --cpus 'x'");
}

static void appends_strerror(void **state)
{
	struct husk_error e = {0};
	assert_int_equal(husk_err_errno(&e, ENOENT, "open %s", "/x"), -ENOENT);
	assert_string_equal(e.msg, "open /x: No such file or directory");
}

static void non_positive_code_still_fails(void **state)
{
	struct husk_error e = {0};
	assert_int_equal(husk_err(&e, 0, "oops"), -EIO);
	assert_int_equal(husk_err(&e, -5, "oops"), -EIO);
	assert_int_equal(e.code, EIO);
}

static void null_error_is_allowed(void **state)
{
	assert_int_equal(husk_err(NULL, EPERM, "x"), -EPERM);
}

static void long_message_is_truncated_and_terminated(void **state)
{
	struct husk_error e = {0};
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	husk_err_errno(&e, EIO, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(returns_negative_code_and_message),
	    cmocka_unit_test(appends_strerror),
	    cmocka_unit_test(non_positive_code_still_fails),
	    cmocka_unit_test(null_error_is_allowed),
	    cmocka_unit_test(long_message_is_truncated_and_terminated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
