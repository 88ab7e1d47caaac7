/* The two small PC devices a Linux guest uses to end itself:
 *  - i8042 (ports 0x60, 0x64): command 0xfe pulses the reset line, which
 *    is how Linux reboots with reboot=k (and after a panic with panic=-1);
 *  - the husk power port (0x4f0, husk's own): any byte written to it
 *    powers the VM off. Without ACPI Linux has no way to power off, so
 *    husk's guest init writes this port after it has synced its disks. */
#ifndef HUSK_VMM_LEGACY_H
#define HUSK_VMM_LEGACY_H

#include "vm.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64
#define HUSK_POWER_PORT 0x4f0

int legacy_register(struct vm *vm, struct husk_error *err);

#endif
