#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/kvm_probe.h"

static void classify_follows_the_facts(void **state)
{
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_NOT_RUN, false),
	                 HUSK_KVM_NONE);
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_OK, false),
	                 HUSK_KVM_HARDWARE);
	assert_int_equal(
	    husk_kvm_classify(HUSK_PROBE_GUEST_INTERNAL_ERROR, false),
	    HUSK_KVM_PVM);
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_FAILED, false),
	                 HUSK_KVM_UNUSABLE);
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_NOT_KVM, false),
	                 HUSK_KVM_UNUSABLE);
}

static void pvm_module_is_never_hardware(void **state)
{
	/* Even when the small probe guest gets through. */
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_OK, true),
	                 HUSK_KVM_PVM);
	assert_int_equal(husk_kvm_classify(HUSK_PROBE_GUEST_FAILED, true),
	                 HUSK_KVM_PVM);
}

static void names_and_consequences(void **state)
{
	assert_string_equal(husk_kvm_kind_name(HUSK_KVM_HARDWARE), "hardware");
	assert_string_equal(husk_kvm_kind_name(HUSK_KVM_PVM), "pvm");
	assert_string_equal(husk_kvm_kind_name(HUSK_KVM_UNUSABLE), "unusable");
	assert_string_equal(husk_kvm_kind_name(HUSK_KVM_NONE), "none");
	assert_non_null(strstr(husk_kvm_consequence(HUSK_KVM_PVM), "qemu"));
	assert_non_null(strstr(husk_kvm_consequence(HUSK_KVM_NONE), "TCG"));
}

static void missing_device_means_none(void **state)
{
	struct husk_kvm_report r;
	struct husk_error e = {0};
	assert_int_equal(
	    husk_kvm_probe("/nonexistent/kvm", "/nonexistent", &r, &e), 0);
	assert_int_equal(r.kind, HUSK_KVM_NONE);
	assert_int_equal(r.api_version, 0);
	assert_non_null(strstr(r.detail, "/nonexistent/kvm"));
}

static void a_device_that_is_not_kvm_is_unusable(void **state)
{
	struct husk_kvm_report r;
	struct husk_error e = {0};
	/* Even where kvm_pvm is loaded: /dev/null is nobody's KVM. */
	char dir[] = "/tmp/husk-sysmod.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/kvm_pvm", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(husk_kvm_probe("/dev/null", dir, &r, &e), 0);
	rmdir(path);
	rmdir(dir);
	assert_int_equal(r.kind, HUSK_KVM_UNUSABLE);
	assert_non_null(strstr(r.detail, "API version"));
}

static void modules_are_read_from_the_given_directory(void **state)
{
	char dir[] = "/tmp/husk-sysmod.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/kvm_pvm", dir);
	assert_int_equal(mkdir(path, 0755), 0);

	struct husk_kvm_report r;
	struct husk_error e = {0};
	assert_int_equal(husk_kvm_probe("/nonexistent/kvm", dir, &r, &e), 0);
	assert_true(r.pvm_module);
	assert_string_equal(r.vendor_module, "kvm_pvm");

	rmdir(path);
	snprintf(path, sizeof(path), "%s/kvm_amd", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(husk_kvm_probe("/nonexistent/kvm", dir, &r, &e), 0);
	assert_false(r.pvm_module);
	assert_string_equal(r.vendor_module, "kvm_amd");
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(classify_follows_the_facts),
	    cmocka_unit_test(pvm_module_is_never_hardware),
	    cmocka_unit_test(names_and_consequences),
	    cmocka_unit_test(missing_device_means_none),
	    cmocka_unit_test(a_device_that_is_not_kvm_is_unusable),
	    cmocka_unit_test(modules_are_read_from_the_given_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
