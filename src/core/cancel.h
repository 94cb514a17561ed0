/*
 * cancel.h - the one cancel core behind every route (SPEC 3.1, 3.3, 4).
 *
 * A route builds a cancel_request (who, which resources, force), calls
 * cancel_run() - one database transaction through callstop_cancel() in
 * sql/003_cancel.sql (its result row as of sql/006_contracts.sql: the outbox
 * rows it wrote come back as (id, provider) pairs) - and words each item's
 * outcome with cancel_message() or in its own API's shape.
 */
#ifndef CALLSTOP_CANCEL_H
#define CALLSTOP_CANCEL_H

#include <stddef.h>

#include "common/attr.h"
#include "core/ctx.h"

#define CANCEL_REF_MAX 129 /* SPEC 3: an id is at most 128 bytes */

enum cancel_type {
	CANCEL_CALL,           /* a call UUID */
	CANCEL_CALL_OR_OPENAI, /* a call UUID or an OpenAI call id (admin) */
	CANCEL_BATCH,          /* a job_id ("batch-...") or a batch UUID */
};

enum cancel_outcome {
	CANCEL_NOT_FOUND,
	CANCEL_CANCELLED,
	CANCEL_TERMINAL,          /* already terminal: nothing changed */
	CANCEL_ALREADY_CANCELLED, /* batch already cancelled; force ended its calls */
};

/* What became of one thing a cancelled call had running (SPEC 6). */
enum cancel_target {
	CANCEL_TARGET_NONE,           /* the call had none */
	CANCEL_TARGET_DONE,           /* terminated */
	CANCEL_TARGET_QUEUED,         /* in the outbox for the retry child */
	CANCEL_TARGET_FAILED,         /* permanent failure (4xx): dead-lettered */
	CANCEL_TARGET_NOT_CONFIGURED, /* provider not configured: failed */
};

struct cancel_item {
	enum cancel_type type;
	const char *given;        /* the id as the client sent it (borrowed) */
	char ref[CANCEL_REF_MAX]; /* the compared form: UUIDs lower-cased */

	/* filled by cancel_run() */
	enum cancel_outcome outcome;
	char status[24]; /* the resource's status after the cancel */
	int cancelled_count;
	int pending_cancelled;       /* P of SPEC 3.1 */
	int active_count;            /* A of SPEC 3.1 */
	char uuid[37];               /* the call or batch UUID, "" if not found */
	char job_id[CANCEL_REF_MAX]; /* batches: the job_id */
	long long tenant_id;
	enum cancel_target livekit;
	enum cancel_target openai;
};

struct cancel_request {
	long long tenant_id; /* the caller's tenant; 0 = any tenant (admin) */
	int force;
	const char *route; /* for cancel_history: "calls.cancel", ... */
	long long key_id;  /* api_keys.id (or admin token id) */
	const char *request_id;
	const char *end_reason; /* "cancelled" or "admin_cancel" */
	struct cancel_item *items;
	size_t n;   /* items used */
	size_t cap; /* items allocated */
	/* The route's answer from the filled items (SPEC 3.1, 4), in its own
	 * shape; called by cancel_run() */
	void (*answer)(const struct cancel_request *req, void *arg);
	void *answer_arg;
};

/*
 * Start a request of route (its name, static, and request_id, borrowed, go
 * to cancel_history) for tenant_id (0 = any) and key_id, with room for cap items
 * in items (borrowed).
 */
void cancel_request_init(struct cancel_request *req, const char *route, const char *request_id,
			 struct cancel_item *items, size_t cap, long long tenant_id, long long key_id,
			 int force, const char *end_reason);

/*
 * Append id to req unless an equal id is already there (SPEC 3.1: UUIDs are
 * compared lower-cased; the first spelling is kept).  id must be at most
 * CANCEL_REF_MAX - 1 bytes and must outlive req.  Returns 0 if appended,
 * 1 if it was a duplicate, -1 if req is full.
 */
int cancel_add(struct cancel_request *req, enum cancel_type type, const char *id) MUST_CHECK;

/*
 * Run the whole request as one transaction, fill every item's result and
 * have req->answer() answer it.  With a key (ctx->tx, SPEC 8) the
 * transaction also claims the key, and the answer is given first with every
 * configured termination worded as queued - the answer stored with the
 * effects - then, if termination requests were sent after the commit,
 * again as they ended.  Returns 0 once answered (a key's replay, 409 or 422
 * included), or -1 if the database was unreachable or refused a statement
 * (logged): then the caller answers the error, and nothing was changed
 * (with a key, a commit that failed on a lost connection is "probably": see
 * db.h).
 */
int cancel_run(struct worker_ctx *ctx, struct cancel_request *req) MUST_CHECK;

/* The message of SPEC 3.1 for one item, for a request with this force. */
void cancel_message(const struct cancel_item *it, int force, char *buf, size_t len);

/* "call" or "batch". */
const char *cancel_resource_type(const struct cancel_item *it);

#endif
