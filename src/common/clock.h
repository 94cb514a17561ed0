/*
 * clock.h - the one clock of request timing, the watchdog and caches.
 */
#ifndef CALLSTOP_CLOCK_H
#define CALLSTOP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ms: the same clock in every process of the machine, so
 * the master can compare a worker's request start with its own now. */
static inline int64_t clock_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
