/*
 * ctx.h - what one worker process holds for the requests it serves: its
 * configuration, its database connection, the cursor key, its outbox sender
 * and the listening socket.  Built by the worker loop (http/worker.c), used
 * by the cancel and status cores and by every route handler.
 */
#ifndef CALLSTOP_CTX_H
#define CALLSTOP_CTX_H

#include "common/attr.h"
#include "common/conf.h"
#include "common/cursor.h"
#include "common/db.h"

struct outbox;
struct worker_ctx;

/*
 * The transaction of a request whose answer is stored with its effects
 * (SPEC 8, Idempotency-Key): set by the request layer (http/idempotency.c)
 * for the length of one request, called by the core around its effects.
 */
struct ctx_tx {
	/* Before the effects, for the caller tenant_id (0: the admin token
	 * admin_id, SPEC 4.3): BEGIN and claim the key.  0: run the effects in
	 * the transaction; 1: the request is answered (a replay, 409, 422) and
	 * nothing is to be done; -1: the database failed (nothing changed). */
	int (*begin)(struct worker_ctx *ctx, struct ctx_tx *tx, long long tenant_id, long long admin_id);
	/* After the effects, with the answer as the client would get it now:
	 * store it with them and COMMIT.  sending: requests still go out after
	 * the commit, and the answer is set again once they are answered.
	 * 0, or -1: the database failed (whether the commit happened unknown). */
	int (*commit)(struct worker_ctx *ctx, struct ctx_tx *tx, int sending);
};

/* One per worker process. */
struct worker_ctx {
	const struct conf *cfg; /* borrowed; replaced only by a new worker */
	struct db *db;
	struct cursor_key cursor_key; /* loaded on first use: ctx_cursor_key() */
	struct outbox *outbox;        /* NULL if no provider is configured */
	int listen_fd;                /* the FastCGI socket (status page: its queue) */
	struct ctx_tx *tx;            /* SPEC 8: this request's key, or NULL */
};

/* Load the cursor HMAC key (sql/001_schema.sql, callstop_secrets) unless
 * loaded.  Returns 0, or -1 if the database failed or holds no key (logged). */
int ctx_cursor_key(struct worker_ctx *ctx) MUST_CHECK;

#endif
