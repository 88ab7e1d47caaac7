/* husk-poweroff: powers a husk-vmm guest off. Without ACPI Linux cannot
 * power off by itself, so husk-vmm offers the husk power port (I/O port
 * 0x4f0, docs/vmm.md): sync the disks, then write any byte there. Static,
 * for guest initramfs images. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/io.h>
#include <termios.h>
#include <unistd.h>

#define HUSK_POWER_PORT 0x4f0

int main(void)
{
	/* Let the console driver send what is queued: after the power-off
	 * it is gone. */
	tcdrain(STDOUT_FILENO);
	tcdrain(STDERR_FILENO);
	sync();
	if (ioperm(HUSK_POWER_PORT, 1, 1) < 0) {
		fprintf(stderr, "husk-poweroff: ioperm: %s\n", strerror(errno));
		return 1;
	}
	outb(0, HUSK_POWER_PORT);
	/* Only reached when the VMM ignored the port (not husk-vmm). */
	fprintf(stderr, "husk-poweroff: the VMM has no husk power port\n");
	return 1;
}
