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

/* One per worker process. */
struct worker_ctx {
	const struct conf *cfg; /* borrowed; replaced only by a new worker */
	struct db *db;
	struct cursor_key cursor_key; /* loaded on first use: ctx_cursor_key() */
	struct outbox *outbox;        /* NULL if no provider is configured */
	int listen_fd;                /* the FastCGI socket (status page: its queue) */
};

/* Load the cursor HMAC key (sql/001_schema.sql, callstop_secrets) unless
 * loaded.  Returns 0, or -1 if the database failed or holds no key (logged). */
int ctx_cursor_key(struct worker_ctx *ctx) MUST_CHECK;

#endif
