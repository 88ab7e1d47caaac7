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
#include "control.h"
#include "cpu.h"
#include "devices.h"
#include "evloop.h"
#include "husk/kvm_probe.h"
#include "legacy.h"
#include "log.h"
#include "options.h"
#include "sandbox.h"
#include "serial.h"
#include "vm.h"

static struct vm vm;
static struct serial com1;
static struct evloop loop;
static struct vmm_devices devices;
static struct control control = {.listen_fd = -1};

static void serial_irq(void *opaque)
{
	vm_irq_pulse(opaque, SERIAL_COM1_IRQ);
}

/* PVM cannot run a stock Linux guest: refuse before building anything.
 * (Other unusable KVMs fail at VM creation or in the guest, and say so.) */
static int refuse_pvm(void)
{
	if (!husk_kvm_pvm_loaded("/sys/module"))
		return 0;
	vmm_log("/dev/kvm is PVM (kvm_pvm): a standard Linux guest cannot run "
	        "on it; see `husk check`");
	vmm_log("%s", husk_kvm_consequence(HUSK_KVM_PVM));
	return VM_EXIT_NO_KVM;
}

static void on_stop(void *opaque, uint32_t events)
{
	uint64_t v;
	(void)events;
	ssize_t n = read(*(int *)opaque, &v, sizeof(v));
	(void)n; /* the loop condition does the rest */
}

static void on_signal(void *opaque, uint32_t events)
{
	struct signalfd_siginfo si;
	(void)events;
	if (read(*(int *)opaque, &si, sizeof(si)) == sizeof(si))
		vmm_log("signal %u: stopping the VM", si.ssi_signo);
	vm_request_exit(&vm, VM_EXIT_STOPPED);
}

/* Serves host-side I/O until the VM stops. */
static void main_loop(void)
{
	while (atomic_load(&vm.exit_reason) == VM_EXIT_RUNNING) {
		if (evloop_run_once(&loop, -1) < 0) {
			vm_request_exit(&vm, VM_EXIT_ERROR);
			break;
		}
	}
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
	if ((rc = refuse_pvm()) != 0)
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
	loop.epfd = -1;
	if (vm_create(&vm, opt.memory_mib << 20, opt.cpus, &err) < 0 ||
	    evloop_init(&loop, &err) < 0)
		goto out;
	evloop_watch(&loop, vm.stop_eventfd, EPOLLIN, on_stop,
	             &vm.stop_eventfd);
	evloop_watch(&loop, sfd, EPOLLIN, on_signal, &sfd);
	serial_init(&com1, opt.console_fd, serial_irq, &vm);
	struct bus_device com1_dev = serial_bus_device(&com1);
	if (bus_register(&vm.pio, SERIAL_COM1_BASE, 8, &com1_dev, &err) < 0 ||
	    legacy_register(&vm, &err) < 0)
		goto out;
	if (opt.control &&
	    control_open(&control, opt.control, &vm, &loop, &err) < 0)
		goto out;
	control.memory_mib = opt.memory_mib;
	if (devices_create(&devices, &vm, &opt, &loop, &err) < 0 ||
	    vmm_build_cmdline(&opt, devices.slots, devices.n, cmdline,
	                      sizeof(cmdline), &err) < 0 ||
	    boot_load_linux(&vm.mem, opt.kernel, opt.initrd, cmdline, opt.cpus,
	                    &entry, &err) < 0 ||
	    cpu_configure_all(&vm, &entry, &err) < 0)
		goto out;
	control.ndevices = devices.n;
	vmm_debug("booting: %s", cmdline);
	if (opt.net.user)
		sandbox_allow_net();
	if (opt.nshares)
		sandbox_allow_p9();
	if (cpu_start_all(&vm, &err) < 0 ||
	    (opt.seccomp && sandbox_enter(&err) < 0)) {
		vm_request_exit(&vm, VM_EXIT_ERROR);
		cpu_release_all(&vm);
		cpu_stop_all(&vm);
		goto out;
	}
	cpu_release_all(&vm);
	main_loop();
	cpu_stop_all(&vm);
	status = atomic_load(&vm.exit_reason);
	err.msg[0] = '\0';
out:
	if (err.msg[0])
		vmm_log("%s", err.msg);
	control_close(&control);
	devices_destroy(&devices);
	vm_destroy(&vm);
	evloop_destroy(&loop);
	if (opt.console_fd > 2)
		close(opt.console_fd);
	return status;
}
