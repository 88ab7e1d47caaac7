/* 16550A register model, enough for Linux's 8250 driver: its autoconfig
 * (scratch register, loopback test, FIFO detection), polled console
 * output and interrupt-driven tty output and input. Output is written as
 * soon as the guest writes THR, so the transmitter is always empty. */
#include "serial.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
	IER_RDI = 0x01,  /* receive data interrupt */
	IER_THRI = 0x02, /* transmitter empty interrupt */
	IIR_NONE = 0x01,
	IIR_THRI = 0x02,
	IIR_RDI = 0x04,
	IIR_FIFO_ENABLED = 0xc0,
	FCR_ENABLE = 0x01,
	FCR_CLEAR_RX = 0x02,
	LCR_DLAB = 0x80,
	MCR_LOOP = 0x10,
	LSR_DR = 0x01,
	LSR_THRE = 0x20,
	LSR_TEMT = 0x40,
	MSR_CTS = 0x10,
	MSR_DSR = 0x20,
	MSR_RI = 0x40,
	MSR_DCD = 0x80,
};

void serial_init(struct serial *s, int out_fd, void (*irq)(void *),
                 void *irq_opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->irq_opaque = irq_opaque;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
}

static uint8_t pending_iir(const struct serial *s)
{
	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_interrupt)
		return IIR_THRI;
	return IIR_NONE;
}

/* Edge-triggered on the ISA line: raise when a new condition appears. */
static void update_irq(struct serial *s, uint8_t before)
{
	uint8_t now = pending_iir(s);
	if (now != IIR_NONE && now != before && s->irq)
		s->irq(s->irq_opaque);
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		if (s->rx_len < SERIAL_FIFO_SIZE) {
			s->rx[(s->rx_head + s->rx_len++) % SERIAL_FIFO_SIZE] =
			    byte;
			s->lsr |= LSR_DR;
		}
		return;
	}
	if (s->out_fd < 0)
		return;
	ssize_t n;
	do
		n = write(s->out_fd, &byte, 1);
	while (n < 0 && errno == EINTR);
	/* A closed or full console loses output; the guest must not stall. */
}

static uint8_t read_reg(struct serial *s, unsigned reg)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			return s->dll;
		if (!s->rx_len)
			return 0;
		{
			uint8_t b = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
			if (--s->rx_len == 0)
				s->lsr &= ~LSR_DR;
			return b;
		}
	case UART_IER: return dlab ? s->dlm : s->ier;
	case UART_IIR_FCR: {
		uint8_t iir = pending_iir(s);
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if (iir == IIR_THRI)
			s->thr_interrupt = false;
		return iir | s->iir_fifo;
	}
	case UART_LCR: return s->lcr;
	case UART_MCR: return s->mcr;
	case UART_LSR: return s->lsr;
	case UART_MSR:
		if (s->mcr & MCR_LOOP) {
			/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
			return (uint8_t)(((s->mcr & 0x01) ? MSR_DSR : 0) |
			                 ((s->mcr & 0x02) ? MSR_CTS : 0) |
			                 ((s->mcr & 0x04) ? MSR_RI : 0) |
			                 ((s->mcr & 0x08) ? MSR_DCD : 0));
		}
		return s->msr;
	case UART_SCR: return s->scr;
	}
	return 0xff;
}

static void write_reg(struct serial *s, unsigned reg, uint8_t v)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		if (dlab) {
			s->dll = v;
			return;
		}
		transmit(s, v);
		s->thr_interrupt = true;
		return;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			return;
		}
		/* Enabling THRI while THR is empty raises it at once. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_interrupt = true;
		s->ier = v & 0x0f;
		return;
	case UART_IIR_FCR:
		s->iir_fifo = (v & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;
		if (v & FCR_CLEAR_RX) {
			s->rx_len = 0;
			s->lsr &= ~LSR_DR;
		}
		return;
	case UART_LCR: s->lcr = v; return;
	case UART_MCR: s->mcr = v & 0x1f; return;
	case UART_SCR: s->scr = v; return;
	}
}

static void bus_read_cb(void *opaque, uint64_t offset, uint8_t *data,
                        uint32_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	uint8_t before = pending_iir(s);
	data[0] = read_reg(s, (unsigned)offset);
	memset(data + 1, 0, len - 1);
	update_irq(s, before);
	pthread_mutex_unlock(&s->lock);
}

static void bus_write_cb(void *opaque, uint64_t offset, const uint8_t *data,
                         uint32_t len)
{
	struct serial *s = opaque;
	(void)len;
	pthread_mutex_lock(&s->lock);
	uint8_t before = pending_iir(s);
	write_reg(s, (unsigned)offset, data[0]);
	/* A THR write re-arms THRI: report it even if THRI was pending. */
	if (offset == UART_RBR_THR && !(s->lcr & LCR_DLAB))
		before = IIR_NONE;
	update_irq(s, before);
	pthread_mutex_unlock(&s->lock);
}

struct bus_device serial_bus_device(struct serial *s)
{
	return (struct bus_device){"serial", s, bus_read_cb, bus_write_cb};
}

unsigned serial_input(struct serial *s, const uint8_t *data, unsigned len)
{
	pthread_mutex_lock(&s->lock);
	uint8_t before = pending_iir(s);
	unsigned n = 0;
	while (n < len && s->rx_len < SERIAL_FIFO_SIZE) {
		s->rx[(s->rx_head + s->rx_len++) % SERIAL_FIFO_SIZE] =
		    data[n++];
		s->lsr |= LSR_DR;
	}
	if (n)
		before = before == IIR_RDI ? IIR_NONE : before;
	update_irq(s, before);
	pthread_mutex_unlock(&s->lock);
	return n;
}
