/*
 * metrics.h - Prometheus text exposition (format 0.0.4) of GET
 * /callstop-metrics, and the hooks that count what it reports.
 *
 * The counters live in the scoreboard (shared memory), so that every worker
 * adds to the same numbers and any worker can answer the scrape; the outbox
 * depth is read from the database at scrape time.  Without a scoreboard
 * (callstopctl, unit tests) the hooks do nothing.
 */
#ifndef CALLSTOP_METRICS_H
#define CALLSTOP_METRICS_H

#include "common/db.h"

/* A cancel's result for one resource: resource_type "call" or "batch",
 * outcome as callstop_cancel() returns it ("cancelled", "terminal",
 * "already_cancelled", "not_found"). */
void metrics_cancel(const char *resource_type, const char *outcome);

/* One termination attempt recorded: provider "livekit" or "openai", state
 * as written to the outbox ("done", "pending" = to be retried, "failed" =
 * dead-lettered). */
void metrics_outbox(const char *provider, const char *state);

/* Idempotency-Keys (SPEC 8): one stored with its answer; n expired ones
 * pruned. */
void metrics_idempotency_stored(void);
void metrics_idempotency_pruned(int n);
/* Verified termination (SPEC 11), provider "livekit" or "openai": the rows
 * of a DB_OUTBOX_RESULT or DB_VERIFY_RESULT (enum outbox_result_col; res may
 * be NULL) counted into the seconds-to-silence histogram (done) and the
 * unknown counter; one escalation round. */
void metrics_silence_of(const PGresult *res);
void metrics_escalation(const char *provider);
/* One webhook delivery attempt recorded (SPEC 9): outcome "delivered",
 * "retry", "failed" (given up after webhook.max_age) or "gone" (410: the
 * endpoint is disabled). */
void metrics_webhook(const char *outcome);

/*
 * The whole exposition as a malloc'ed string (the caller frees it), or NULL
 * if out of memory.  listen_queue: connections waiting in the listen queue
 * now, -1 if unknown.  A database that cannot be read leaves out the outbox
 * depth and sets callstop_outbox_depth_up to 0.
 */
char *metrics_render(struct db *db, long listen_queue);

#endif
