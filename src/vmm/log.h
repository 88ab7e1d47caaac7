/* husk-vmm's diagnostics: one line each on stderr, prefixed "husk-vmm: ".
 * The VMM is its own front end, so its pieces may log; they never exit. */
#ifndef HUSK_VMM_LOG_H
#define HUSK_VMM_LOG_H

#include <stdbool.h>

void vmm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Debug lines are printed only after vmm_log_set_debug(true) (--debug). */
void vmm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vmm_log_set_debug(bool on);

/* Silences everything (unit tests that feed hostile input on purpose). */
void vmm_log_set_quiet(bool on);

#endif
