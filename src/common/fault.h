/*
 * fault.h - fault injection for the end-to-end tests, compiled in only by
 * `./configure --enable-test-hooks` (which `./bootstrap check` uses and the
 * packages never do).  Without it every hook is an empty inline function and
 * the test_* configuration keys do not exist: a configuration that sets one
 * is refused as having an unknown key.
 *
 * The hooks (each logged when it fires, so a test can see it did):
 *   test_crash_on_start  (config)  every worker exits 1 right after fork
 *                                  (crash-loop backoff tests, t/A4);
 *   test_hang_route      (config)  requests of that route never end
 *                                  (request_timeout watchdog, t/A1, t/A3);
 *   CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS (environment) a worker sleeps that
 *                                  long between a cancel's (or a campaign
 *                                  operation's) commit and its termination
 *                                  requests, so that a test can kill it
 *                                  there (t/93, t/A2, t/B2);
 *   CALLSTOP_TEST_PAUSE_AFTER_SEND_MS (environment) a worker sleeps that
 *                                  long after its termination requests were
 *                                  answered and recorded (sent), before it
 *                                  answers its client (t/C4).
 */
#ifndef CALLSTOP_FAULT_H
#define CALLSTOP_FAULT_H

#include "config.h"

#include "common/conf.h"

#ifdef CALLSTOP_TEST_HOOKS

/* In a worker right after fork: exits if test_crash_on_start is set. */
void fault_worker_start(const struct conf *cfg, int index);

/* Before the handler of route runs: never returns if it is test_hang_route. */
void fault_route(const struct conf *cfg, const char *route, const char *request_id);

/* Between a cancel's commit and its termination requests. */
void fault_after_commit(void);

/* After a cancel's termination requests were recorded. */
void fault_after_send(void);

#else

static inline void fault_worker_start(const struct conf *cfg, int index)
{
	(void)cfg;
	(void)index;
}

static inline void fault_route(const struct conf *cfg, const char *route, const char *request_id)
{
	(void)cfg;
	(void)route;
	(void)request_id;
}

static inline void fault_after_commit(void)
{
}

static inline void fault_after_send(void)
{
}

#endif

#endif
