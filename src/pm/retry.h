/*
 * retry.h - the retry child: drains the termination outbox (SPEC 6).
 *
 * One process supervised by the master beside the workers.  It claims due
 * rows with FOR UPDATE SKIP LOCKED (so the retry children of several hosts
 * can share one database), sends them through the same outbox code as the
 * workers, and sleeps until a NOTIFY on callstop_outbox or outbox.poll_ms.
 * It also verifies the rows the workers and it left sent (SPEC 11,
 * core/verify.h), many rooms at once, between and during its drains.
 */
#ifndef CALLSTOP_RETRY_H
#define CALLSTOP_RETRY_H

#include "common/conf.h"

/* Rows claimed per round. */
#define RETRY_BATCH 200

/* Run the retry child.  Never returns: exits 0 on TERM/QUIT, non-zero on a
 * start-up failure (the master backs off and respawns it). */
void retry_main(const struct conf *cfg) __attribute__((noreturn));

#endif
