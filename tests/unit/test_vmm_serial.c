/* The 16550A model as Linux's 8250 driver drives it: byte accesses
 * through the bus device, output into a pipe the test reads back, and an
 * interrupt line that counts its edges. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/bus.h"
#include "../../src/vmm/serial.h"

/* Register offsets and bits, as in Linux's serial_reg.h. */
enum {
	RBR = 0, /* THR on write, DLL with DLAB */
	IER = 1, /* DLM with DLAB */
	IIR = 2, /* FCR on write */
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7,
	IER_RDI = 0x01,
	IER_THRI = 0x02,
	IIR_NO_INT = 0x01,
	IIR_THRI = 0x02,
	IIR_RDI = 0x04,
	IIR_FIFO = 0xc0,
	LCR_DLAB = 0x80,
	MCR_LOOP = 0x10,
	LSR_DR = 0x01,
	LSR_THRE = 0x20,
	LSR_TEMT = 0x40,
};

struct fx {
	struct serial s;
	struct bus_device bd;
	int pipe[2]; /* the console: the device writes [1], the test reads [0]
	              */
	unsigned irqs;
};

static void count_irq(void *opaque)
{
	struct fx *f = opaque;
	f->irqs++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	serial_init(&f->s, f->pipe[1], count_irq, f);
	f->bd = serial_bus_device(&f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	pthread_mutex_destroy(&f->s.lock);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

static void out(struct fx *f, unsigned reg, uint8_t v)
{
	f->bd.write(f->bd.opaque, reg, &v, 1);
}

static uint8_t in(struct fx *f, unsigned reg)
{
	uint8_t v = 0x5a;
	f->bd.read(f->bd.opaque, reg, &v, 1);
	return v;
}

/* Reads what the console got so far (up to len bytes). */
static size_t console(struct fx *f, void *buf, size_t len)
{
	ssize_t n = read(f->pipe[0], buf, len);
	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return (size_t)n;
}

static void power_on_state(void **state)
{
	struct fx *f = *state;
	assert_string_equal(f->bd.name, "serial");
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	assert_int_equal(in(f, IER), 0);
	assert_int_equal(in(f, LCR), 0);
	assert_int_equal(in(f, MCR), 0);
	/* Carrier, data set ready, clear to send: a cable is plugged in. */
	assert_int_equal(in(f, MSR), 0xb0);
	assert_int_equal(in(f, RBR), 0);
	assert_int_equal(f->irqs, 0);
}

static void transmit_reaches_fd(void **state)
{
	struct fx *f = *state;
	const char msg[] = "Linux version 6.1\r\n";
	for (size_t i = 0; i < sizeof(msg) - 1; i++) {
		/* The transmitter is always empty: polled output never
		 * waits. */
		assert_int_equal(in(f, LSR) & (LSR_THRE | LSR_TEMT),
		                 LSR_THRE | LSR_TEMT);
		out(f, RBR, (uint8_t)msg[i]);
	}
	char buf[64];
	assert_int_equal(console(f, buf, sizeof(buf)), sizeof(msg) - 1);
	assert_memory_equal(buf, msg, sizeof(msg) - 1);
	/* Every byte value goes through as is. */
	for (unsigned b = 0; b < 256; b++)
		out(f, RBR, (uint8_t)b);
	uint8_t all[300];
	assert_int_equal(console(f, all, sizeof(all)), 256);
	for (unsigned b = 0; b < 256; b++)
		assert_int_equal(all[b], b);
	/* With interrupts off, none was raised; LSR never changed. */
	assert_int_equal(f->irqs, 0);
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	/* Transmitting does not make receive data appear. */
	assert_int_equal(in(f, RBR), 0);
}

static void full_or_missing_console(void **state)
{
	struct fx *f = *state;
	/* A console nobody reads: output is lost, the guest does not
	 * stall (the pipe is non-blocking). */
	uint8_t junk[4096];
	memset(junk, 'x', sizeof(junk));
	while (write(f->pipe[1], junk, sizeof(junk)) > 0)
		;
	for (int i = 0; i < 100; i++)
		out(f, RBR, 'y');
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	/* No console at all. */
	struct serial s;
	serial_init(&s, -1, NULL, NULL);
	struct bus_device bd = serial_bus_device(&s);
	uint8_t v = 'z';
	bd.write(bd.opaque, RBR, &v, 1);
	v = IER_THRI | IER_RDI;
	bd.write(bd.opaque, IER, &v, 1); /* no irq callback: no crash */
	bd.read(bd.opaque, IIR, &v, 1);
	assert_int_equal(v, IIR_THRI);
	assert_int_equal(serial_input(&s, (const uint8_t *)"a", 1), 1);
	pthread_mutex_destroy(&s.lock);
}

static void scratch_register(void **state)
{
	struct fx *f = *state;
	const uint8_t v[] = {0x55, 0xaa, 0x00, 0xff, 0x5a};
	for (size_t i = 0; i < sizeof(v); i++) {
		out(f, SCR, v[i]);
		assert_int_equal(in(f, SCR), v[i]);
	}
	/* It is storage only. */
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(f->irqs, 0);
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 0);
}

static void divisor_latch(void **state)
{
	struct fx *f = *state;
	/* 115200 / 9600 = 12, as set by Linux's serial8250_set_termios. */
	out(f, LCR, LCR_DLAB | 0x03);
	out(f, RBR, 12);
	out(f, IER, 0);
	assert_int_equal(in(f, RBR), 12);
	assert_int_equal(in(f, IER), 0);
	out(f, RBR, 0x34);
	out(f, IER, 0x12);
	assert_int_equal(in(f, RBR), 0x34);
	assert_int_equal(in(f, IER), 0x12);
	assert_int_equal(in(f, LCR), LCR_DLAB | 0x03);
	/* Divisor writes are not data and do not touch IER. */
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 0);
	assert_int_equal(f->irqs, 0);
	out(f, LCR, 0x03);
	assert_int_equal(in(f, IER), 0);
	assert_int_equal(in(f, LCR), 0x03);
	/* Input is not shadowed by the latch once DLAB is off. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"q", 1), 1);
	out(f, LCR, LCR_DLAB);
	assert_int_equal(in(f, RBR), 0x34);
	assert_true(in(f, LSR) & LSR_DR);
	out(f, LCR, 0);
	assert_int_equal(in(f, RBR), 'q');
	/* And the latch kept its value. */
	out(f, LCR, LCR_DLAB);
	assert_int_equal(in(f, RBR), 0x34);
	assert_int_equal(in(f, IER), 0x12);
}

static void loopback_msr(void **state)
{
	struct fx *f = *state;
	/* Linux's autoconfig: MCR = LOOP|OUT2|RTS must read back as
	 * DCD|CTS in MSR's high nibble. */
	out(f, MCR, 0x1a);
	assert_int_equal(in(f, MSR) & 0xf0, 0x90);
	/* Each modem output to its input. */
	const struct {
		uint8_t mcr, msr;
	} map[] = {
	    {0x10, 0x00}, /* nothing */
	    {0x11, 0x20}, /* DTR -> DSR */
	    {0x12, 0x10}, /* RTS -> CTS */
	    {0x14, 0x40}, /* OUT1 -> RI */
	    {0x18, 0x80}, /* OUT2 -> DCD */
	    {0x1f, 0xf0},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		out(f, MCR, map[i].mcr);
		assert_int_equal(in(f, MCR), map[i].mcr);
		assert_int_equal(in(f, MSR) & 0xf0, map[i].msr);
	}
	/* MCR keeps its five bits only. */
	out(f, MCR, 0xff);
	assert_int_equal(in(f, MCR), 0x1f);
	/* Out of loopback, the modem lines are the cable's again. */
	out(f, MCR, 0x0b);
	assert_int_equal(in(f, MSR), 0xb0);
	out(f, MCR, 0x00);
	assert_int_equal(in(f, MSR), 0xb0);
}

static void loopback_data(void **state)
{
	struct fx *f = *state;
	out(f, MCR, MCR_LOOP);
	out(f, RBR, 'L');
	/* Not on the console, but in the receiver. */
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 0);
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 'L');
	assert_false(in(f, LSR) & LSR_DR);
	/* The receiver holds SERIAL_FIFO_SIZE bytes; the rest are lost. */
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE + 6; i++)
		out(f, RBR, (uint8_t)i);
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++) {
		assert_true(in(f, LSR) & LSR_DR);
		assert_int_equal(in(f, RBR), i);
	}
	assert_false(in(f, LSR) & LSR_DR);
	/* Back out of loopback: output goes to the console again. */
	out(f, MCR, 0);
	out(f, RBR, 'O');
	assert_int_equal(console(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'O');
	assert_false(in(f, LSR) & LSR_DR);
}

static void thri(void **state)
{
	struct fx *f = *state;
	/* Enabling THRI with the transmitter empty raises it at once. */
	out(f, IER, IER_THRI);
	assert_int_equal(f->irqs, 1);
	assert_int_equal(in(f, IER), IER_THRI);
	assert_int_equal(in(f, IIR), IIR_THRI);
	/* Reading IIR acknowledged it. */
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	assert_int_equal(f->irqs, 1);
	/* Enabling it again while enabled raises nothing new. */
	out(f, IER, IER_THRI);
	assert_int_equal(f->irqs, 1);
	assert_int_equal(in(f, IIR), IIR_NO_INT);

	/* Each byte written re-arms it: the tty driver's output loop. */
	for (unsigned i = 1; i <= 3; i++) {
		out(f, RBR, 'a');
		assert_int_equal(f->irqs, 1 + i);
		assert_int_equal(in(f, IIR), IIR_THRI);
		assert_int_equal(in(f, IIR), IIR_NO_INT);
	}
	/* A byte written while THRI is still pending raises again too. */
	out(f, RBR, 'b');
	out(f, RBR, 'c');
	assert_int_equal(f->irqs, 6);
	assert_int_equal(in(f, IIR), IIR_THRI);

	/* Disabled: pending or not, nothing is reported or raised. */
	out(f, RBR, 'd');
	out(f, IER, 0);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	unsigned before = f->irqs;
	out(f, RBR, 'e');
	assert_int_equal(f->irqs, before);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	/* IER keeps its four bits only. */
	out(f, IER, 0xf0);
	assert_int_equal(in(f, IER), 0);
	char buf[16];
	assert_int_equal(console(f, buf, sizeof(buf)), 7);
}

static void receive(void **state)
{
	struct fx *f = *state;
	/* Interrupts off: data is there, no edge. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(f->irqs, 0);
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, LSR) & (LSR_THRE | LSR_TEMT),
	                 LSR_THRE | LSR_TEMT);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	assert_int_equal(in(f, RBR), 'a');
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 'b');
	assert_false(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 0);

	/* RDI enabled: input raises it and IIR reports it until the data
	 * is read. */
	out(f, IER, IER_RDI);
	assert_int_equal(f->irqs, 0);
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"x", 1), 1);
	assert_int_equal(f->irqs, 1);
	assert_int_equal(in(f, IIR), IIR_RDI);
	assert_int_equal(in(f, IIR), IIR_RDI); /* not cleared by reading */
	/* More input while pending signals again, never less. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"y", 1), 1);
	assert_true(f->irqs >= 1);
	assert_int_equal(in(f, RBR), 'x');
	assert_int_equal(in(f, IIR), IIR_RDI);
	assert_int_equal(in(f, RBR), 'y');
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	/* Nothing to queue: nothing raised. */
	unsigned before = f->irqs;
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"", 0), 0);
	assert_int_equal(f->irqs, before);

	/* RDI comes before THRI; when the data is gone THRI shows and
	 * gets its own edge. */
	out(f, IER, IER_RDI | IER_THRI);
	assert_int_equal(in(f, IIR), IIR_THRI);
	out(f, RBR, '!');
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"z", 1), 1);
	assert_int_equal(in(f, IIR), IIR_RDI);
	before = f->irqs;
	assert_int_equal(in(f, RBR), 'z');
	assert_int_equal(f->irqs, before + 1);
	assert_int_equal(in(f, IIR), IIR_THRI);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
}

static void receive_fifo_cap(void **state)
{
	struct fx *f = *state;
	uint8_t data[SERIAL_FIFO_SIZE + 36];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 1);
	/* Twice round the ring, so the wrap is exercised. */
	for (int round = 0; round < 3; round++) {
		assert_int_equal(serial_input(&f->s, data, sizeof(data)),
		                 SERIAL_FIFO_SIZE);
		/* Full: nothing more fits. */
		assert_int_equal(serial_input(&f->s, data, 1), 0);
		for (unsigned i = 0; i < SERIAL_FIFO_SIZE / 2; i++)
			assert_int_equal(in(f, RBR), i + 1);
		/* Half read: half fits again, continuing the stream. */
		assert_int_equal(serial_input(&f->s, data + SERIAL_FIFO_SIZE,
		                              sizeof(data) - SERIAL_FIFO_SIZE),
		                 SERIAL_FIFO_SIZE / 2);
		for (unsigned i = SERIAL_FIFO_SIZE / 2;
		     i < SERIAL_FIFO_SIZE + SERIAL_FIFO_SIZE / 2; i++)
			assert_int_equal(in(f, RBR), i + 1);
		assert_false(in(f, LSR) & LSR_DR);
	}
}

static void fifo_control(void **state)
{
	struct fx *f = *state;
	/* FIFO enable shows as IIR bits 7:6 set: a 16550A. */
	out(f, IIR, 0x01);
	assert_int_equal(in(f, IIR), IIR_FIFO | IIR_NO_INT);
	out(f, IER, IER_THRI);
	assert_int_equal(in(f, IIR), IIR_FIFO | IIR_THRI);
	assert_int_equal(in(f, IIR), IIR_FIFO | IIR_NO_INT);
	out(f, IER, 0);
	/* Clearing the receive FIFO drops pending input. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"abc", 3), 3);
	out(f, IIR, 0x07); /* enable, clear RX and TX */
	assert_false(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 0);
	assert_int_equal(in(f, IIR), IIR_FIFO | IIR_NO_INT);
	/* Clearing without enabling turns the FIFO bits off. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"d", 1), 1);
	out(f, IIR, 0x02);
	assert_false(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, IIR), IIR_NO_INT);
	/* Enable alone keeps pending input. */
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"e", 1), 1);
	out(f, IIR, 0xc1); /* enable, 14-byte trigger */
	assert_int_equal(in(f, IIR), IIR_FIFO | IIR_NO_INT);
	assert_int_equal(in(f, RBR), 'e');
	/* And new input after a clear is read in order. */
	out(f, IIR, 0x03);
	assert_int_equal(serial_input(&f->s, (const uint8_t *)"fg", 2), 2);
	assert_int_equal(in(f, RBR), 'f');
	assert_int_equal(in(f, RBR), 'g');
	/* Writing FCR never reached the console. */
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 0);
}

static void wider_accesses(void **state)
{
	struct fx *f = *state;
	/* A 2- or 4-byte read sees the register in the low byte, zeros
	 * above; a wider write uses the low byte. */
	uint8_t d[4];
	memset(d, 0xee, sizeof(d));
	f->bd.read(f->bd.opaque, LSR, d, 4);
	assert_memory_equal(d, "\x60\0\0\0", 4);
	const uint8_t w[2] = {'W', 'X'};
	f->bd.write(f->bd.opaque, RBR, w, 2);
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'W');
}

static void through_the_bus(void **state)
{
	struct fx *f = *state;
	struct bus b;
	struct husk_error e = {0};
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, SERIAL_COM1_BASE, 8, &f->bd, &e), 0);
	uint8_t v = 'B';
	assert_true(bus_write(&b, SERIAL_COM1_BASE, &v, 1));
	assert_true(bus_read(&b, SERIAL_COM1_BASE + LSR, &v, 1));
	assert_int_equal(v, LSR_THRE | LSR_TEMT);
	v = 0x42;
	assert_true(bus_write(&b, SERIAL_COM1_BASE + SCR, &v, 1));
	v = 0;
	assert_true(bus_read(&b, SERIAL_COM1_BASE + SCR, &v, 1));
	assert_int_equal(v, 0x42);
	/* COM2 is not there: Linux's probe reads all ones. */
	assert_false(bus_read(&b, 0x2f8 + LSR, &v, 1));
	assert_int_equal(v, 0xff);
	uint8_t buf[4];
	assert_int_equal(console(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'B');
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(power_on_state),
	    T(transmit_reaches_fd),
	    T(full_or_missing_console),
	    T(scratch_register),
	    T(divisor_latch),
	    T(loopback_msr),
	    T(loopback_data),
	    T(thri),
	    T(receive),
	    T(receive_fifo_cap),
	    T(fifo_control),
	    T(wider_accesses),
	    T(through_the_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
