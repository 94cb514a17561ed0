/*
 * fuzz.h - what every fuzz target (t/fuzz/NAME_fuzz.c) and the corpus driver
 * share.
 *
 * A target is a libFuzzer entry point: LLVMFuzzerTestOneInput() gets one
 * input (data, size bytes, not NUL-terminated) and returns 0; a broken
 * invariant aborts (FUZZ_CHECK).  Built two ways (Makefile.am):
 *   make fuzz   clang -fsanitize=fuzzer,address,undefined: libFuzzer's main
 *               explores for FUZZ_SECONDS from t/fuzz/corpus/<target>/;
 *   make check  the ordinary compiler and driver.c's main: every file of the
 *               corpus once, as a regression test (TAP, one line a target).
 */
#ifndef CALLSTOP_FUZZ_H
#define CALLSTOP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional, once before the first input (libFuzzer's contract). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test: abort (a crash to libFuzzer, a
 * failed test to the driver) with the line that broke it. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* The input as a NUL-terminated string (malloc'ed; the caller frees it), or
 * NULL if it holds a NUL byte (C-string APIs never see one). */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 0 && __builtin_memchr(data, '\0', size) != NULL)
		return NULL;
	s = malloc(size + 1);
	if (s == NULL)
		return NULL;
	if (size > 0)
		__builtin_memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
