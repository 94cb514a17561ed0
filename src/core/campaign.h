/*
 * campaign.h - campaign control beyond cancel (SPEC 10, 12): pause and
 * resume a batch, cancel by filter with a dry run, do-not-call suppression.
 *
 * Each operation is one statement - one transaction, or the request's
 * keyed transaction (SPEC 8) - through a function of sql/010_campaign.sql, which takes the locks in SPEC 3.1's order and writes
 * the history rows and the termination_outbox rows; after commit the rows
 * are sent at once (SPEC 6) as the cancel core sends its own, and what fails
 * stays with the retry child.  Every function returns 0, or -1 if the
 * database was unreachable or refused the statement (db_last_error() tells
 * which; logged): then nothing was changed.
 */
#ifndef CALLSTOP_CAMPAIGN_H
#define CALLSTOP_CAMPAIGN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/attr.h"
#include "core/cancel.h"
#include "core/ctx.h"

/*
 * Who asks (borrowed strings; they go to cancel_history and the events), and
 * how the answer is written: answer(answer_arg) writes it from the outcome
 * the function filled in.  The functions below call it themselves, once the
 * outcome is known (and before the commit too under an Idempotency-Key,
 * SPEC 8, where the answer is stored with the effects); the caller writes
 * nothing after a 0, and the database error after a -1.
 */
struct campaign_who {
	long long tenant_id;
	long long key_id;
	const char *route;      /* the route's name: "batch.pause", ... */
	const char *request_id; /* nginx's $request_id */
	void (*answer)(void *answer_arg);
	void *answer_arg;
};

enum campaign_outcome {
	CAMPAIGN_NOT_FOUND, /* no such batch for this tenant */
	CAMPAIGN_TERMINAL,  /* the batch is terminal: 409 invalid_state */
	CAMPAIGN_CHANGED,   /* paused / resumed */
	CAMPAIGN_NOOP,      /* already paused / not paused */
};

/* A pause or resume (SPEC 10.1). */
struct campaign_batch {
	enum campaign_outcome outcome;
	char batch_id[37];
	char job_id[CANCEL_REF_MAX];
	char status[24]; /* after the request */
	int released;    /* R: claimed entries given back to pending */
	int terminated;  /* T: active calls cancelled and terminated (hangup) */
	int active;      /* A: the batch's active calls before the request */
};

/* Pause batch ref (a job_id or a batch UUID) of who's tenant; with hangup
 * its active calls are cancelled and terminated as with force. */
int campaign_pause(struct worker_ctx *ctx, const struct campaign_who *who, const char *ref, int hangup,
		   struct campaign_batch *out) MUST_CHECK;

/* Resume batch ref: paused -> processing (or pending if never claimed). */
int campaign_resume(struct worker_ctx *ctx, const struct campaign_who *who, const char *ref,
		    struct campaign_batch *out) MUST_CHECK;

/* The message of SPEC 10.1 for b (pause: 1 for a pause, 0 for a resume). */
void campaign_batch_message(const struct campaign_batch *b, int pause, int hangup, char *buf, size_t len);

/* A suppression (SPEC 12). */
struct campaign_suppress {
	int added;
	int already; /* already on the list */
	int entries_cancelled;
	int calls_cancelled;
};

/* Add numbers[0..n) (E.164, checked by the caller) to who's tenant's list,
 * cancelling their not-yet-started entries and, with hangup, their calls. */
int campaign_suppress(struct worker_ctx *ctx, const struct campaign_who *who, const char *const *numbers,
		      size_t n, const char *reason, int hangup, struct campaign_suppress *out) MUST_CHECK;

/* 1 if s is an E.164 number as SPEC 12 takes it: ^\+[1-9][0-9]{6,14}$. */
int campaign_is_e164(const char *s);

/* A cancel by filter (SPEC 10.2). */
struct campaign_match_req {
	const char *filter_json; /* the filter object, checked by the caller; "{}" with all_active */
	int all_active;
	int include_entries;
	int dry_run;
	int max; /* 1 .. 10000 */
};

struct campaign_match {
	int too_many; /* more than max matched: nothing changed */
	int matched_calls;
	int matched_entries;
	int cancelled_count;
	cJSON *calls; /* [{"call_log_id", "status", "message"}], the first 100; owned by the caller */
	int dry_run;  /* as asked */
};

int campaign_cancel_matching(struct worker_ctx *ctx, const struct campaign_who *who,
			     const struct campaign_match_req *req, struct campaign_match *out) MUST_CHECK;

#endif
