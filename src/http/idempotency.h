/*
 * idempotency.h - Idempotency-Key on the routes that change state (SPEC 8;
 * IETF draft-ietf-httpapi-idempotency-key-header-07), one mechanism for
 * every route the routing table flags (http/router.c, ROUTE_IDEMPOTENT).
 *
 * A flagged request without the header runs as before.  With it:
 *   - a value that is not 1..255 characters of [A-Za-z0-9_.:-] is 400
 *     invalid_request in the family's body, and nothing runs;
 *   - the handler runs with ctx->tx set (core/ctx.h): its checks and
 *     authentication first (their 400/401/403/413/415 store nothing), then,
 *     just before the effects, the core calls begin(): BEGIN, then the key of
 *     the caller (scope "tenant:<id>", or "admin:<token id>" for SPEC 4.3) is
 *     claimed in sql/008_idempotency.sql, waiting idempotency_wait (ms) for a
 *     request holding it:
 *       stored, same fingerprint -> the stored status and body, byte for
 *                                   byte, plus "Idempotent-Replayed: true";
 *       stored, other fingerprint -> 422 idempotency_key_reused;
 *       still held                -> 409 idempotency_key_in_flight with
 *                                   Retry-After: 1;
 *       free (or expired)         -> the effects run in the transaction;
 *   - after the effects commit(): the answer, if it is one of a request that
 *     ran (2xx, 404, 409), is stored in the same transaction, kept
 *     idempotency_ttl seconds; a 5xx or a lost connection rolls back and
 *     stores nothing;
 *   - a cancel whose termination requests go out after the commit stored its
 *     answer with them "queued" (true, even if the worker dies before
 *     sending), and keeps the key held until idem_dispatch() has written
 *     the answer the client got.
 *
 * The fingerprint is the hex SHA-256 of the method, the route's name (the
 * two Trillet-style paths are one route), its path id, the query string and
 * the SHA-256 of the body.
 */
#ifndef CALLSTOP_IDEMPOTENCY_H
#define CALLSTOP_IDEMPOTENCY_H

#include "common/db.h"
#include "core/ctx.h"
#include "http/api.h"
#include "http/request.h"

#define IDEM_KEY_MAX 255         /* SPEC 8 */
#define IDEM_PRUNE_BATCH 1000    /* keys deleted by one statement */
#define IDEM_PRUNE_EVERY_MS 1000 /* ms between two rounds of pruning */

/* Run handler(r, ctx, id) for route (its name, static) of family, under the
 * request's Idempotency-Key if it has one. */
void idem_dispatch(struct request *r, struct worker_ctx *ctx, enum api_family family, const char *route,
		   void (*handler)(struct request *, struct worker_ctx *, const char *), const char *id);

/* 1 if key is a valid Idempotency-Key value (SPEC 8), else 0. */
int idem_key_valid(const char *key);

/*
 * Delete expired keys, IDEM_PRUNE_BATCH a statement, at most max_batches
 * statements, at most once every IDEM_PRUNE_EVERY_MS (the retry child calls
 * it between outbox rounds; sooner calls return 0 at once).  Returns the
 * number deleted, or -1 if the database failed (logged by db.c).
 */
int idem_prune(struct db *db, int max_batches);

#endif
