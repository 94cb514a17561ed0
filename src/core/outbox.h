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
 * connections kept between calls.  Every provider (core/providers/provider.h)
 * has its own slots, at most outbox_concurrency transfers each, and its own
 * claims: a provider that hangs never holds back another's rows.  Each row is
 * recorded as its transfer ends: done, or sent for a provider with a
 * read-back (SPEC 11; core/verify.h then confirms it).  After failures, the first success to a
 * provider makes its rows waiting out their backoff due at once; a row that
 * fails once older than outbox_max_age is dead-lettered (issue 10).
 */
#ifndef CALLSTOP_OUTBOX_H
#define CALLSTOP_OUTBOX_H

#include <stddef.h>

#include "common/attr.h"
#include "common/conf.h"
#include "common/db.h"

/* What became of a row after outbox_send(). */
enum outbox_result {
	OUTBOX_RESULT_DONE,   /* the provider accepted it: done, or sent (SPEC 11) */
	OUTBOX_RESULT_QUEUED, /* pending: the retry child has it */
	OUTBOX_RESULT_FAILED, /* dead-lettered */
};

struct outbox;

/* A sender for this process with cfg's providers (borrowed; it must outlive
 * the outbox).  NULL on ENOMEM. */
struct outbox *outbox_new(const struct conf *cfg) MUST_CHECK;
void outbox_free(struct outbox *ob);

/*
 * Claim and send the pending rows among ids[0..n) now, record each outcome,
 * and write it to results[i] (rows that could not be claimed - taken by the
 * retry child, or the database failing - are OUTBOX_RESULT_QUEUED).
 * Never fails the caller: the rows stay in the outbox.
 */
void outbox_send(struct outbox *ob, struct db *db, const long long *ids, size_t n,
		 enum outbox_result *results);

/* Claim due rows provider by provider as slots free up, up to limit rows in
 * all and for at most outbox_timeout_ms, send them and record them.  Returns
 * the number of rows processed, or -1 if the database is unreachable. */
int outbox_drain(struct outbox *ob, struct db *db, int limit) MUST_CHECK;

/* Call tick(arg) once per turn of outbox_drain()'s and outbox_send()'s
 * loop (at least every 100 ms while they wait on transfers): the retry child
 * keeps its verifications (core/verify.h) moving during a long drain.  tick
 * must not use the outbox; it may use the database connection. */
void outbox_set_tick(struct outbox *ob, void (*tick)(void *arg), void *arg);

#endif
