/*
 * idempotency.c - see idempotency.h.
 */
#include "http/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"

#define IDEM_KEY_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

enum idem_state {
	IDEM_IDLE, /* no transaction of ours */
	IDEM_OPEN, /* BEGIN sent (and the key claimed, or being claimed) */
	IDEM_HELD, /* committed with the answer; the key is held until the final answer */
};

struct idem {
	struct ctx_tx tx; /* first: the core's hooks get &idem->tx */
	struct request *r;
	enum api_family family;
	const char *key;                           /* the header's value (borrowed) */
	char fingerprint[EVP_MAX_MD_SIZE * 2 + 1]; /* hex */
	char scope[48];                            /* "tenant:<id>" | "admin:<token id>" */
	enum idem_state state;
	int stored_status;
	char *stored_body; /* IDEM_HELD: the answer stored (malloc'ed) */
};

int idem_key_valid(const char *key)
{
	size_t n = strlen(key);

	return n >= 1 && n <= IDEM_KEY_MAX && strspn(key, IDEM_KEY_CHARS) == n;
}

/* The answers stored (SPEC 8): those of a request that ran, 2xx, and 404 /
 * 409 about the resource. */
static int idem_storable(int status)
{
	return (status >= 200 && status < 300) || status == 404 || status == 409;
}

/* An error of SPEC 8 in the family's body; the Trillet-style family names
 * its errors by their reason phrase (SPEC 4.2). */
static void idem_error(struct idem *k, int status, const char *code, const char *reason, const char *message)
{
	api_error(k->r, k->family, status, k->family == API_TRILLET ? reason : code, message);
}

static void idem_hex(const unsigned char *md, unsigned int len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	unsigned int i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * len] = '\0';
}

/* SHA-256 over method, route, id, query (each NUL-terminated) and the
 * body's own SHA-256.  0, or -1 if OpenSSL failed. */
static int idem_fingerprint(struct idem *k, const char *route, const char *id)
{
	const struct request *r = k->r;
	const char *parts[4] = { r->method, route, id ? id : "", r->query ? r->query : "" };
	unsigned char body_md[EVP_MAX_MD_SIZE], md[EVP_MAX_MD_SIZE];
	unsigned int body_len = 0, len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c != NULL &&
		 EVP_Digest(r->body ? r->body : "", r->body ? r->body_len : 0, body_md, &body_len,
			    EVP_sha256(), NULL) == 1 &&
		 EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	size_t i;

	for (i = 0; ok && i < 4; i++)
		ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1) == 1;
	ok = ok && EVP_DigestUpdate(c, body_md, body_len) == 1 && EVP_DigestFinal_ex(c, md, &len) == 1;
	EVP_MD_CTX_free(c);
	if (ok)
		idem_hex(md, len, k->fingerprint);
	return ok ? 0 : -1;
}

/* Run a statement of no interest but its success.  0 or -1. */
static int idem_exec(struct worker_ctx *ctx, enum db_stmt stmt, int n, const char *const *params)
{
	PGresult *res = db_exec(ctx->db, stmt, n, params);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Roll back our transaction if it is open (a failure: nothing is stored). */
static void idem_rollback(struct idem *k, struct worker_ctx *ctx)
{
	if (k->state == IDEM_OPEN && idem_exec(ctx, DB_TX_ROLLBACK, 0, NULL) < 0)
		log_warn(
			"idempotency: rollback failed (the connection is gone, and the transaction with it)");
	k->state = IDEM_IDLE;
}

/* The stored answer, byte for byte (SPEC 8). */
static void idem_replay(struct idem *k, const PGresult *res)
{
	char *body = strdup(PQgetvalue(res, 0, IDEM_CLAIM_BODY));

	request_add_header(k->r, "Idempotent-Replayed", "true");
	request_reply_text(k->r, atoi(PQgetvalue(res, 0, IDEM_CLAIM_STATUS)), NULL, body);
}

/* ctx_tx.begin: BEGIN, claim the key, answer unless it is to run. */
static int idem_begin(struct worker_ctx *ctx, struct ctx_tx *tx, long long tenant_id, long long admin_id)
{
	struct idem *k = (struct idem *)tx;
	char wait[16];
	const char *params[4] = { k->scope, k->key, k->fingerprint, wait };
	const char *verdict;
	PGresult *res;
	int rc = 1;

	if (tenant_id != 0)
		snprintf(k->scope, sizeof(k->scope), "tenant:%lld", tenant_id);
	else
		snprintf(k->scope, sizeof(k->scope), "admin:%lld", admin_id);
	/* the claim is one statement: its wait must end well inside its
	 * statement_timeout, or the wait would be a 503 */
	snprintf(wait, sizeof(wait), "%d",
		 ctx->cfg->idempotency_wait < ctx->cfg->database_statement_timeout_ms / 2
			 ? ctx->cfg->idempotency_wait
			 : ctx->cfg->database_statement_timeout_ms / 2);
	if (idem_exec(ctx, DB_TX_BEGIN, 0, NULL) < 0)
		return -1;
	k->state = IDEM_OPEN;
	res = db_exec(ctx->db, DB_IDEM_CLAIM, 4, params);
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		return -1; /* rolled back by idem_dispatch */
	}
	verdict = PQgetvalue(res, 0, IDEM_CLAIM_VERDICT);
	if (strcmp(verdict, "run") == 0)
		rc = 0;
	else if (strcmp(verdict, "replay") == 0)
		idem_replay(k, res);
	else if (strcmp(verdict, "reused") == 0)
		idem_error(k, 422, "idempotency_key_reused", "Unprocessable Entity",
			   "This Idempotency-Key was used with a different request (idempotency_key_reused)");
	else {
		request_add_header(k->r, "Retry-After", "1");
		idem_error(k, 409, "idempotency_key_in_flight", "Conflict",
			   "A request with this Idempotency-Key is still running; retry"
			   " (idempotency_key_in_flight)");
	}
	PQclear(res);
	if (rc != 0)
		idem_rollback(k, ctx);
	return rc;
}

/* ctx_tx.commit: store the answer as it is now with the effects, COMMIT. */
static int idem_commit(struct worker_ctx *ctx, struct ctx_tx *tx, int sending)
{
	struct idem *k = (struct idem *)tx;
	const struct request *r = k->r;
	char status[8], ttl[16];
	const char *body = r->body_out ? r->body_out : "";
	const char *params[7] = {
		k->scope, k->key, k->fingerprint, status, body, ttl, sending ? "true" : "false"
	};
	int store = idem_storable(r->status);
	PGresult *res;
	int ok;

	snprintf(status, sizeof(status), "%d", r->status);
	snprintf(ttl, sizeof(ttl), "%d", ctx->cfg->idempotency_ttl);
	if (store && idem_exec(ctx, DB_IDEM_STORE, 7, params) < 0)
		return -1;
	res = db_exec(ctx->db, DB_TX_COMMIT, 0, NULL);
	/* a COMMIT of a transaction that failed answers ROLLBACK */
	ok = res != NULL && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	k->state = IDEM_IDLE;
	if (!ok)
		return -1;
	if (store)
		metrics_idempotency_stored();
	if (store && sending) {
		k->stored_body = strdup(body);
		k->stored_status = r->status;
		k->state = IDEM_HELD;
	}
	return 0;
}

/* The answer the client gets, once the termination requests are answered,
 * and the key let go.  A failure leaves the stored answer ("queued"), still
 * true, and the lock goes with the connection. */
static void idem_finish(struct idem *k, struct worker_ctx *ctx)
{
	const struct request *r = k->r;
	int final = idem_storable(r->status) && r->body_out != NULL && k->stored_body != NULL;
	char status[8];
	const char *params[4] = { k->scope, k->key, status, final ? r->body_out : k->stored_body };

	snprintf(status, sizeof(status), "%d", final ? r->status : k->stored_status);
	if (params[3] == NULL || idem_exec(ctx, DB_IDEM_FINISH, 4, params) < 0)
		log_warn("idempotency: the final answer of key %s was not stored; the first one stays",
			 k->key);
	free(k->stored_body);
	k->stored_body = NULL;
	k->state = IDEM_IDLE;
}

void idem_dispatch(struct request *r, struct worker_ctx *ctx, enum api_family family, const char *route,
		   void (*handler)(struct request *, struct worker_ctx *, const char *), const char *id)
{
	struct idem k;
	const char *key = request_param(r, "HTTP_IDEMPOTENCY_KEY");

	if (key == NULL) {
		handler(r, ctx, id);
		return;
	}
	memset(&k, 0, sizeof(k));
	k.tx.begin = idem_begin;
	k.tx.commit = idem_commit;
	k.r = r;
	k.family = family;
	k.key = key;
	if (!idem_key_valid(key)) {
		idem_error(&k, 400, "invalid_request", "Bad Request",
			   "Idempotency-Key must be 1 to 255 characters of A-Z, a-z, 0-9, _ . : -");
		return;
	}
	if (idem_fingerprint(&k, route, id) < 0) {
		idem_error(&k, 500, "internal_error", "Internal Server Error",
			   "Internal error: cannot hash the request");
		return;
	}
	ctx->tx = &k.tx;
	handler(r, ctx, id);
	ctx->tx = NULL;
	if (k.state == IDEM_OPEN)
		idem_rollback(&k, ctx);
	else if (k.state == IDEM_HELD)
		idem_finish(&k, ctx);
}

int idem_prune(struct db *db, int max_batches)
{
	char limit[16];
	const char *params[1] = { limit };
	static int64_t last_ms;
	int64_t now = clock_monotonic_ms();
	int total = 0, i;

	if (last_ms != 0 && now - last_ms < IDEM_PRUNE_EVERY_MS)
		return 0;
	last_ms = now;
	snprintf(limit, sizeof(limit), "%d", IDEM_PRUNE_BATCH);
	for (i = 0; i < max_batches; i++) {
		PGresult *res = db_exec(db, DB_IDEM_PRUNE, 1, params);
		int n;

		if (res == NULL)
			return total > 0 ? total : -1;
		n = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, IDEM_PRUNE_COUNT)) : 0;
		PQclear(res);
		metrics_idempotency_pruned(n);
		total += n;
		if (n < IDEM_PRUNE_BATCH)
			break;
	}
	if (total > 0)
		log_info("idempotency: %d expired key(s) pruned", total);
	return total;
}
