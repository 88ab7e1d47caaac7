#include "legacy.h"

#include <string.h>

#include "log.h"

enum { I8042_CMD_RESET = 0xfe };

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data,
                       uint32_t len)
{
	(void)opaque;
	(void)offset;
	/* Status: no data, input buffer empty, so Linux never waits. */
	memset(data, 0, len);
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data,
                        uint32_t len)
{
	(void)len;
	/* Offsets are from 0x60: the command port is at offset 4. */
	if (offset == I8042_CMD_PORT - I8042_DATA_PORT &&
	    data[0] == I8042_CMD_RESET)
		vm_request_exit(opaque, VM_EXIT_REBOOT);
}

static void power_write(void *opaque, uint64_t offset, const uint8_t *data,
                        uint32_t len)
{
	(void)offset;
	(void)data;
	(void)len;
	vm_request_exit(opaque, VM_EXIT_POWEROFF);
}

int legacy_register(struct vm *vm, struct husk_error *err)
{
	const struct bus_device i8042 = {"i8042", vm, i8042_read, i8042_write};
	const struct bus_device power = {"husk-power", vm, NULL, power_write};
	int rc = bus_register(&vm->pio, I8042_DATA_PORT, 5, &i8042, err);
	if (rc == 0)
		rc = bus_register(&vm->pio, HUSK_POWER_PORT, 1, &power, err);
	return rc;
}
