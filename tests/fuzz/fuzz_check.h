/* The fuzz targets' assertion: a broken invariant traps, which libFuzzer
 * reports as a crash with the input that caused it. */
#ifndef HUSK_FUZZ_CHECK_H
#define HUSK_FUZZ_CHECK_H

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#endif
