/*
 * fault.c - see fault.h.  Built only with --enable-test-hooks.
 */
#include "common/fault.h"

#ifdef CALLSTOP_TEST_HOOKS

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

void fault_worker_start(const struct conf *cfg, int index)
{
	if (cfg->test_crash_on_start) {
		log_error("worker %d: test_crash_on_start is set (TEST ONLY): exiting", index);
		exit(1);
	}
}

void fault_route(const struct conf *cfg, const char *route, const char *request_id)
{
	char rid[80];

	if (cfg->test_hang_route == NULL || strcmp(cfg->test_hang_route, route) != 0)
		return;
	log_warn("test_hang_route = %s (TEST ONLY): request %s hangs", route,
		 log_escape(rid, sizeof(rid), request_id));
	for (;;)
		pause();
}

void fault_after_commit(void)
{
	const char *ms = getenv("CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS");

	if (ms != NULL && atoi(ms) > 0) {
		log_info("test hook: pausing %s ms after commit", ms);
		usleep((useconds_t)atoi(ms) * 1000);
	}
}

void fault_after_send(void)
{
	const char *ms = getenv("CALLSTOP_TEST_PAUSE_AFTER_SEND_MS");

	if (ms != NULL && atoi(ms) > 0) {
		log_info("test hook: pausing %s ms after send", ms);
		usleep((useconds_t)atoi(ms) * 1000);
	}
}

#endif
