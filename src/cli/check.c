/* husk check: can this host run husk-vmm, and if not, what will husk do. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "husk/kvm_probe.h"

/* Exit status when KVM is not usable: husk still works (qemu/TCG), but a
 * script that needs husk-vmm can tell. */
enum { CHECK_EXIT_NO_KVM = 3 };

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"device", required_argument, NULL, 'd'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *dev = "/dev/kvm";
	int quiet = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'q': quiet = 1; break;
		case 'h':
			printf("usage: husk check [--device PATH] [--quiet]\n"
			       "Exit status: 0 hardware KVM, 3 no usable KVM "
			       "(husk falls back to qemu/TCG), 125 error.\n"
			       "--quiet prints only the verdict: hardware, "
			       "pvm, unusable or none.\n");
			return 0;
		default: return HUSK_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "husk check: unexpected argument '%s'\n",
		        argv[optind]);
		return HUSK_EXIT_USAGE;
	}

	struct husk_kvm_report r;
	struct husk_error err = {0};
	if (husk_kvm_probe(dev, "/sys/module", &r, &err) < 0) {
		fprintf(stderr, "husk check: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	const char *kind = husk_kvm_kind_name(r.kind);
	if (quiet) {
		printf("%s\n", kind);
	} else {
		printf("kvm:      %s: %s", dev, kind);
		if (r.vendor_module[0])
			printf(" (module %s)", r.vendor_module);
		printf("\nprobe:    %s\nverdict:  %s\n", r.detail,
		       husk_kvm_consequence(r.kind));
	}
	return r.kind == HUSK_KVM_HARDWARE ? 0 : CHECK_EXIT_NO_KVM;
}
