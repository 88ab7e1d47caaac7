/* husk-vmm: one process per microVM. See docs/vmm.md for the options and
 * exit statuses. Set-up happens here, in order: probe KVM, create the VM
 * and its devices, load Linux, configure vCPUs, then run until the guest
 * or a signal ends it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "boot.h"
#include "cpu.h"
#include "husk/kvm_probe.h"
#include "legacy.h"
#include "log.h"
#include "options.h"
#include "serial.h"
#include "vm.h"

static struct vm vm;
static struct serial com1;

static void serial_irq(void *opaque)
{
	vm_irq_pulse(opaque, SERIAL_COM1_IRQ);
}

static int refuse_without_kvm(void)
{
	struct husk_kvm_report r;
	struct husk_error err = {0};
	if (husk_kvm_probe("/dev/kvm", "/sys/module", &r, &err) < 0) {
		vmm_log("%s", err.msg);
		return VM_EXIT_ERROR;
	}
	if (r.kind == HUSK_KVM_HARDWARE)
		return 0;
	vmm_log("/dev/kvm cannot run this guest: %s (%s)",
	        husk_kvm_kind_name(r.kind), r.detail);
	vmm_log("%s", husk_kvm_consequence(r.kind));
	return VM_EXIT_NO_KVM;
}

/* Waits for the VM to stop, or for SIGINT/SIGTERM, which stop it. */
static void main_loop(int sfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = vm.stop_eventfd};
	epoll_ctl(ep, EPOLL_CTL_ADD, vm.stop_eventfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	while (atomic_load(&vm.exit_reason) == VM_EXIT_RUNNING) {
		struct epoll_event got[4];
		int n = epoll_wait(ep, got, 4, -1);
		for (int i = 0; i < n; i++) {
			if (got[i].data.fd == sfd) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si))
					vmm_log("signal %u: stopping the VM",
					        si.ssi_signo);
				vm_request_exit(&vm, VM_EXIT_STOPPED);
			}
		}
	}
	close(ep);
}

int main(int argc, char **argv)
{
	struct vmm_options opt;
	struct husk_error err = {0};
	int rc = vmm_parse_options(argc, argv, &opt, &err);
	if (rc > 0)
		return 0; /* --help */
	if (rc < 0) {
		fprintf(stderr, "husk-vmm: %s\n", err.msg);
		return VM_EXIT_ERROR;
	}
	vmm_log_set_debug(opt.debug);
	if ((rc = refuse_without_kvm()) != 0)
		return rc;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	struct boot_entry entry;
	char cmdline[BOOT_CMDLINE_MAX];
	int status = VM_EXIT_ERROR;
	if (vm_create(&vm, opt.memory_mib << 20, opt.cpus, &err) < 0)
		goto out;
	serial_init(&com1, opt.console_fd, serial_irq, &vm);
	struct bus_device com1_dev = serial_bus_device(&com1);
	if (bus_register(&vm.pio, SERIAL_COM1_BASE, 8, &com1_dev, &err) < 0 ||
	    legacy_register(&vm, &err) < 0)
		goto out;
	if (vmm_build_cmdline(&opt, NULL, 0, cmdline, sizeof(cmdline), &err) < 0 ||
	    boot_load_linux(&vm.mem, opt.kernel, opt.initrd, cmdline, opt.cpus,
	                    &entry, &err) < 0 ||
	    cpu_configure_all(&vm, &entry, &err) < 0)
		goto out;
	vmm_debug("booting: %s", cmdline);
	if (cpu_start_all(&vm, &err) < 0) {
		vm_request_exit(&vm, VM_EXIT_ERROR);
		cpu_stop_all(&vm);
		goto out;
	}
	main_loop(sfd);
	cpu_stop_all(&vm);
	status = atomic_load(&vm.exit_reason);
	err.msg[0] = '\0';
out:
	if (err.msg[0])
		vmm_log("%s", err.msg);
	vm_destroy(&vm);
	if (opt.console_fd > 2)
		close(opt.console_fd);
	return status;
}
