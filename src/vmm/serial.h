/* A 16550A UART at 0x3f8, IRQ 4: the guest's console (console=ttyS0).
 * Output goes to an fd (stdout or a log file); input, if any, comes from
 * the main loop through serial_input(). */
#ifndef HUSK_VMM_SERIAL_H
#define HUSK_VMM_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ  4
#define SERIAL_FIFO_SIZE 64

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	/* registers */
	uint8_t ier, iir_fifo, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_interrupt; /* THR empty, not yet reported through IIR */
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_len;
	/* raise the interrupt line (edge); set by the owner */
	void (*irq)(void *opaque);
	void *irq_opaque;
};

void serial_init(struct serial *s, int out_fd, void (*irq)(void *),
                 void *irq_opaque);
struct bus_device serial_bus_device(struct serial *s);

/* Queues up to len input bytes; returns how many fit. */
unsigned serial_input(struct serial *s, const uint8_t *data, unsigned len);

#endif
