/* The Intel MultiProcessor Specification 1.4 table: without ACPI it is how
 * Linux learns the CPUs, the IOAPIC and how ISA interrupts reach it. Placed
 * in the last KiB of base memory (BOOT_EBDA), where Linux looks for it and
 * which the e820 map reserves. */
#include <errno.h>
#include <string.h>

#include "boot.h"
#include "le_bytes.h"

enum {
	MP_LAPIC_ADDR = 0xfee00000,
	MP_IOAPIC_ADDR = 0xfec00000,
	MP_IOAPIC_PINS = 24,
	MP_APIC_VERSION = 0x14,
	MP_IOAPIC_VERSION = 0x11,
	MP_ENTRY_CPU = 0,
	MP_ENTRY_BUS = 1,
	MP_ENTRY_IOAPIC = 2,
	MP_ENTRY_IOINT = 3,
	MP_ENTRY_LINT = 4,
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3,
	MP_TABLE_SPACE = 1024,
};

struct mp_writer {
	uint8_t buf[MP_TABLE_SPACE];
	size_t len;
};

static uint8_t *reserve(struct mp_writer *w, size_t n)
{
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	while (n--)
		sum += *p++;
	return (uint8_t)(0 - sum);
}

static void add_interrupt(struct mp_writer *w, uint8_t type, uint8_t kind,
                          uint8_t src_irq, uint8_t dst_apic, uint8_t dst_pin)
{
	uint8_t *e = reserve(w, 8);
	e[0] = type;
	e[1] = kind;
	le_put16(e, 2, 0); /* polarity and trigger: conform to the bus */
	e[4] = 0;          /* source bus: ISA */
	e[5] = src_irq;
	e[6] = dst_apic;
	e[7] = dst_pin;
}

int boot_write_mptable(struct guest_mem *mem, int ncpus, struct husk_error *err)
{
	if (ncpus < 1 || ncpus > 32)
		return husk_err(err, EINVAL, "MP table: %d CPUs", ncpus);
	struct mp_writer w = {.len = 0};
	memset(w.buf, 0, sizeof(w.buf));
	uint8_t *fp = reserve(&w, 16);
	uint8_t *hdr = reserve(&w, 44);
	unsigned entries = 0;
	uint8_t ioapic_id = (uint8_t)ncpus;

	for (int i = 0; i < ncpus; i++, entries++) {
		uint8_t *e = reserve(&w, 20);
		e[0] = MP_ENTRY_CPU;
		e[1] = (uint8_t)i; /* APIC id, as set in CPUID */
		e[2] = MP_APIC_VERSION;
		e[3] = 1 | (i == 0 ? 2 : 0); /* enabled, bootstrap */
		le_put32(e, 4, 0x600);       /* family 6 */
		le_put32(e, 8, 0x201);       /* FPU, APIC */
	}
	uint8_t *bus = reserve(&w, 8);
	bus[0] = MP_ENTRY_BUS;
	memcpy(bus + 2, "ISA   ", 6);
	entries++;
	uint8_t *io = reserve(&w, 8);
	io[0] = MP_ENTRY_IOAPIC;
	io[1] = ioapic_id;
	io[2] = MP_IOAPIC_VERSION;
	io[3] = 1; /* enabled */
	le_put32(io, 4, MP_IOAPIC_ADDR);
	entries++;
	for (uint8_t pin = 0; pin < MP_IOAPIC_PINS; pin++, entries++)
		add_interrupt(&w, MP_ENTRY_IOINT, MP_INT, pin, ioapic_id, pin);
	add_interrupt(&w, MP_ENTRY_LINT, MP_EXTINT, 0, 0xff, 0);
	add_interrupt(&w, MP_ENTRY_LINT, MP_NMI, 0, 0xff, 1);
	entries += 2;

	size_t table_len = w.len - 16;
	memcpy(hdr, "PCMP", 4);
	le_put16(hdr, 4, (uint16_t)table_len);
	hdr[6] = 4; /* spec 1.4 */
	memcpy(hdr + 8, "HUSK    ", 8);
	memcpy(hdr + 16, "HUSK-VMM    ", 12);
	le_put16(hdr, 34, (uint16_t)entries);
	le_put32(hdr, 36, MP_LAPIC_ADDR);
	hdr[7] = checksum(hdr, table_len);

	memcpy(fp, "_MP_", 4);
	le_put32(fp, 4, BOOT_EBDA + 16);
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4;
	fp[10] = checksum(fp, 16);

	if (guest_mem_write(mem, BOOT_EBDA, w.buf, w.len) < 0)
		return husk_err(err, ENOMEM, "MP table: base memory missing");
	return 0;
}
