/*
 * outbox.h - the termination outbox (SPEC 6).
 *
 * A cancelled call's LiveKit room and OpenAI call are written as
 * termination_outbox rows in the cancel's own transaction
 * (sql/003_cancel.sql).  After commit the worker sends them at once with
 * outbox_send(); the retry child sends the rest with outbox_drain().  Both
 * first claim rows (attempts + 1, next_attempt_at pushed past the request's
 * timeout) so that a row is never sent by two processes at once, and a
 * process that dies mid-send leaves the row to be retried when the claim
 * expires: nothing committed is lost.
 *
 * Requests go out in parallel through one libcurl multi handle per process,
 * at most outbox_concurrency in flight, connections kept between calls.
 */
#ifndef CALLSTOP_OUTBOX_H
#define CALLSTOP_OUTBOX_H

#include <stddef.h>

#include "common/conf.h"
#include "common/db.h"

/* How one HTTP attempt ended. */
enum outbox_verdict {
	OUTBOX_DONE,       /* terminated, or already gone */
	OUTBOX_RETRY,      /* 5xx, 408, 429, timeout, connection error */
	OUTBOX_PERMANENT,  /* other 4xx: dead-lettered at once */
};

/* What became of a row after outbox_send(). */
enum outbox_result {
	OUTBOX_RESULT_DONE,
	OUTBOX_RESULT_QUEUED,   /* pending: the retry child has it */
	OUTBOX_RESULT_FAILED,   /* dead-lettered */
};

struct outbox;

/* A sender for this process with cfg's providers (borrowed; it must outlive
 * the outbox).  NULL on ENOMEM. */
struct outbox *outbox_new(const struct conf *cfg);
void outbox_free(struct outbox *ob);

/*
 * Claim and send the pending rows among ids[0..n) now, record each outcome,
 * and write it to results[i] (rows that could not be claimed - taken by the
 * retry child, or the database failing - are OUTBOX_RESULT_QUEUED).
 * Never fails the caller: the rows stay in the outbox.
 */
void outbox_send(struct outbox *ob, struct db *db, const long long *ids, size_t n, enum outbox_result *results);

/* Claim up to limit due rows and send them.  Returns the number of rows
 * processed, or -1 if the database failed. */
int outbox_drain(struct outbox *ob, struct db *db, int limit);

/* Verdict from an HTTP status alone: 2xx done; 408, 429, 5xx retry; other
 * 4xx permanent; 0 (no response) retry. */
enum outbox_verdict outbox_verdict_by_status(long http_status);

/* Delay before attempt number attempts + 1, ms: base * 2^(attempts-1),
 * capped, with jitter in [50%, 100%]. */
long outbox_backoff_ms(const struct conf *cfg, int attempts);

#endif
