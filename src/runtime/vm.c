/* Starting what runs containers: a microVM (a container's own, or a pod's)
 * or, for tests, husk-agent as a host process. The supervisor and the pod
 * daemon both start theirs through here. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm.h"

const char *rt_host_agent(void)
{
	const char *agent = getenv("HUSK_RUNTIME_AGENT");
	return agent && agent[0] ? agent : NULL;
}

int rt_spawn_host_agent(const char *agent, const char *dir, struct husk_vm *vm,
                        struct husk_error *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return husk_err_errno(err, errno, "socketpair");
	char state[PATH_MAX + 16], log[PATH_MAX + 16];
	snprintf(state, sizeof(state), "%s/agent", dir);
	snprintf(log, sizeof(log), "%s/agent.log", dir);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return husk_err_errno(err, e, "fork");
	}
	if (pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(lfd, 1);
		dup2(lfd, 2);
		dup2(sv[1], 3);
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(agent, agent, "--fd", "3", "--state-dir", state,
		      (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	vm->pid = pid;
	vm->agent_fd = sv[0];
	return 0;
}

unsigned rt_vm_memory_mib(uint64_t limit)
{
	uint64_t want = limit / (1u << 20) + RT_VM_MIB_HEADROOM;
	if (!limit || want < RT_DEFAULT_VM_MIB)
		return RT_DEFAULT_VM_MIB;
	return want > 65536 ? 65536 : (unsigned)want;
}

int rt_vm_boot(const struct rt_vm_plan *p, struct husk_vm *vm,
               struct husk_error *err)
{
	enum husk_vmm want = HUSK_VMM_AUTO, got;
	bool qemu_kvm = false;
	char notice[512] = "";
	const char *vmm_name = getenv("HUSK_RUNTIME_VMM");
	if (vmm_name && vmm_name[0] && husk_vmm_parse(vmm_name, &want, err) < 0)
		return -err->code;
	if (husk_vm_choose(want, &got, &qemu_kvm, notice, sizeof(notice), err) <
	    0)
		return -err->code;
	if (notice[0])
		rt_debug("%s", notice);
	char kernel[PATH_MAX], initrd[PATH_MAX], vmm[PATH_MAX];
	if (husk_vm_find_assets(kernel, initrd, vmm, PATH_MAX, err) < 0)
		return -err->code;
	struct husk_vm_config cfg = {
	    .vmm = got,
	    .qemu_kvm = qemu_kvm,
	    .kernel = kernel,
	    .initrd = initrd,
	    .memory_mib = p->memory_mib,
	    .cpus = p->cpus > 32 ? 32
	            : p->cpus    ? p->cpus
	                         : 1,
	    .disks = p->disks,
	    .ndisks = p->ndisks,
	    .run_dir = p->run_dir,
	    .husk_vmm_path = vmm,
	    .debug = rt_g.debug,
	    /* outbound network, as Docker's default bridge gives */
	    .net = HUSK_VM_NET_USER,
	    .shares = p->shares,
	    .nshares = p->nshares,
	};
	if (husk_vm_start(&cfg, vm, err) < 0)
		return -err->code;
	return 0;
}
