/*
 * suppressions.c - the do-not-call list (SPEC 12).
 *
 * POST /suppressions {"numbers": [...], "reason": "...", "hangup": false}
 * adds numbers and cancels what was queued for them (core/campaign.c);
 * GET /suppressions?limit=&cursor= pages the list by keyset (its id, in an
 * HMAC cursor bound to the tenant: common/cursor.h); GET and DELETE
 * /suppressions/{number} (the + may come as %2B; nginx decodes the path).
 */
#include "http/routes/suppressions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/campaign.h"
#include "http/routes/unified.h"

#define SUPPRESSIONS_MAX 1000       /* numbers per request (SPEC 12) */
#define SUPPRESSIONS_REASON_MAX 500 /* bytes */
#define SUPPRESSIONS_LIMIT_DEFAULT 100

struct suppressions_call {
	struct request *r;
	const struct campaign_suppress *s;
	int hangup;
};

static void suppressions_add_answer(void *arg)
{
	const struct suppressions_call *c = arg;
	const struct campaign_suppress *s = c->s;
	char msg[UNIFIED_MSG_MAX];
	cJSON *body;

	snprintf(msg, sizeof(msg), "%d number(s) added, %d already suppressed. %d pending entries cancelled.",
		 s->added, s->already, s->entries_cancelled);
	if (c->hangup) {
		size_t used = strlen(msg);
		snprintf(msg + used, sizeof(msg) - used, " %d active call(s) cancelled.", s->calls_cancelled);
	}
	body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "added", s->added);
	cJSON_AddNumberToObject(body, "already_suppressed", s->already);
	cJSON_AddNumberToObject(body, "entries_cancelled", s->entries_cancelled);
	cJSON_AddNumberToObject(body, "calls_cancelled", s->calls_cancelled);
	cJSON_AddStringToObject(body, "message", msg);
	request_reply(c->r, 200, body);
}

/* The numbers of the body into v (room for SUPPRESSIONS_MAX), borrowed from
 * root.  Returns how many, or -1 after answering 400 (SPEC 12: also for
 * more than 1000). */
static int suppressions_numbers(struct request *r, const cJSON *root, const char **v)
{
	const cJSON *numbers = cJSON_GetObjectItemCaseSensitive(root, "numbers"), *n;
	int count = 0;

	if (!cJSON_IsArray(numbers) || cJSON_GetArraySize(numbers) == 0 ||
	    cJSON_GetArraySize(numbers) > SUPPRESSIONS_MAX) {
		unified_invalid(r, "numbers must be a list of 1 to 1000 E.164 numbers");
		return -1;
	}
	cJSON_ArrayForEach(n, numbers) {
		if (!campaign_is_e164(cJSON_GetStringValue(n))) {
			unified_invalid(r,
					"every number must be E.164: + and 7 to 15 digits, the first not 0");
			return -1;
		}
		v[count++] = n->valuestring;
	}
	return count;
}

void api_suppressions_add(struct request *r, struct worker_ctx *ctx, const char *unused)
{
	const char *numbers[SUPPRESSIONS_MAX], *reason = NULL;
	struct auth_identity who;
	struct campaign_who cw;
	struct campaign_suppress s;
	struct suppressions_call call = { r, &s, 0 };
	const cJSON *reason_j;
	cJSON *root = NULL;
	int n;

	(void)unused;
	if (api_auth_unified(r, ctx, &who) < 0 || unified_body(r, ctx, 0, &root) < 0)
		return;
	reason_j = cJSON_GetObjectItemCaseSensitive(root, "reason");
	if ((n = suppressions_numbers(r, root, numbers)) < 0)
		goto out;
	if (reason_j != NULL && !cJSON_IsNull(reason_j) &&
	    (!cJSON_IsString(reason_j) || strlen(reason_j->valuestring) > SUPPRESSIONS_REASON_MAX)) {
		unified_invalid(r, "reason must be a string of at most 500 bytes");
		goto out;
	}
	if ((call.hangup = unified_bool_member(root, "hangup")) < 0) {
		unified_invalid(r, "hangup must be a boolean");
		goto out;
	}
	reason = cJSON_GetStringValue(reason_j);
	unified_campaign_who(r, &who, suppressions_add_answer, &call, &cw);
	if (campaign_suppress(ctx, &cw, numbers, (size_t)n, reason, call.hangup, &s) < 0)
		api_db_error(r, ctx, API_UNIFIED);
out:
	cJSON_Delete(root);
}

static cJSON *suppressions_item(const PGresult *res, int i)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "number", PQgetvalue(res, i, SUPPRESSION_NUMBER));
	if (PQgetisnull(res, i, SUPPRESSION_REASON))
		cJSON_AddNullToObject(o, "reason");
	else
		cJSON_AddStringToObject(o, "reason", PQgetvalue(res, i, SUPPRESSION_REASON));
	cJSON_AddStringToObject(o, "created_at", PQgetvalue(res, i, SUPPRESSION_CREATED_AT));
	return o;
}

/* limit and cursor of a page; the cursor is bound to the tenant.  Returns 0,
 * or -1 after answering. */
static int suppressions_page(struct request *r, struct worker_ctx *ctx, const char *scope, int *limit,
			     int64_t *after)
{
	char v[128];
	int got;

	*after = 0;
	if ((*limit = unified_limit(r, SUPPRESSIONS_LIMIT_DEFAULT)) < 0)
		return -1;
	got = request_query(r, "cursor", v, sizeof(v));
	if (got == 0)
		return 0;
	if (ctx_cursor_key(ctx) < 0) {
		api_db_error(r, ctx, API_UNIFIED);
		return -1;
	}
	if (got < 0 || cursor_decode(&ctx->cursor_key, scope, NULL, v, after) < 0) {
		unified_invalid(r, "cursor is not a cursor this server issued for this list");
		return -1;
	}
	return 0;
}

void api_suppressions_list(struct request *r, struct worker_ctx *ctx, const char *unused)
{
	struct auth_identity who;
	char scope[48], tenant[24], after_s[24], limit_s[16], next[CURSOR_LEN + 1];
	const char *params[3] = { tenant, after_s, limit_s };
	PGresult *res;
	cJSON *body, *list;
	int64_t after;
	int limit, i, n;

	(void)unused;
	if (api_auth_unified(r, ctx, &who) < 0)
		return;
	snprintf(scope, sizeof(scope), "suppressions/%lld", who.tenant_id);
	if (suppressions_page(r, ctx, scope, &limit, &after) < 0)
		return;
	snprintf(tenant, sizeof(tenant), "%lld", who.tenant_id);
	snprintf(after_s, sizeof(after_s), "%" PRId64, after);
	/* one more than the page: whether there is a next one */
	snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
	res = db_exec(ctx->db, DB_SUPPRESSION_LIST, 3, params);
	if (res == NULL || ctx_cursor_key(ctx) < 0) {
		PQclear(res);
		api_db_error(r, ctx, API_UNIFIED);
		return;
	}
	n = PQntuples(res) > limit ? limit : PQntuples(res);
	body = cJSON_CreateObject();
	list = cJSON_AddArrayToObject(body, "suppressions");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(list, suppressions_item(res, i));
	if (PQntuples(res) > limit &&
	    cursor_encode(&ctx->cursor_key, scope, NULL,
			  strtoll(PQgetvalue(res, n - 1, SUPPRESSION_ID), NULL, 10), next) == 0)
		cJSON_AddStringToObject(body, "next_cursor", next);
	else
		cJSON_AddNullToObject(body, "next_cursor");
	PQclear(res);
	request_reply(r, 200, body);
}

/* Auth and the {number} of the path: 0, or -1 after answering. */
static int suppressions_one(struct request *r, struct worker_ctx *ctx, const char *number,
			    struct auth_identity *who)
{
	if (api_auth_unified(r, ctx, who) < 0)
		return -1;
	if (!campaign_is_e164(number)) {
		unified_invalid(r,
				"the number must be E.164: + (or %2B) and 7 to 15 digits, the first not 0");
		return -1;
	}
	return 0;
}

void api_suppression_get(struct request *r, struct worker_ctx *ctx, const char *number)
{
	struct auth_identity who;
	PGresult *res;

	if (suppressions_one(r, ctx, number, &who) < 0)
		return;
	switch (db_fetch_one(ctx->db, DB_SUPPRESSION_GET, who.tenant_id, number, &res)) {
	case DB_FETCH_FOUND:
		request_reply(r, 200, suppressions_item(res, 0));
		PQclear(res);
		return;
	case DB_FETCH_NOT_FOUND:
		api_error(r, API_UNIFIED, 404, "not_found", "Number not suppressed");
		return;
	case DB_FETCH_ERROR:
	default:
		api_db_error(r, ctx, API_UNIFIED);
		return;
	}
}

void api_suppression_remove(struct request *r, struct worker_ctx *ctx, const char *number)
{
	struct auth_identity who;
	char tenant[24];
	const char *params[4] = { tenant, number, r->route, r->request_id };
	struct ctx_tx *tx = ctx->tx;
	PGresult *res;
	cJSON *body;
	int rc;

	if (suppressions_one(r, ctx, number, &who) < 0)
		return;
	snprintf(tenant, sizeof(tenant), "%lld", who.tenant_id);
	/* SPEC 8: the answer is stored with the removal, in its transaction */
	if (tx != NULL && (rc = tx->begin(ctx, tx, who.tenant_id, 0)) != 0) {
		if (rc < 0)
			api_db_error(r, ctx, API_UNIFIED);
		return;
	}
	res = db_exec(ctx->db, DB_UNSUPPRESS, 4, params);
	if (res == NULL) {
		api_db_error(r, ctx, API_UNIFIED);
		return;
	}
	if (PQntuples(res) == 0) {
		api_error(r, API_UNIFIED, 404, "not_found", "Number not suppressed");
	} else {
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "number", number);
		cJSON_AddTrueToObject(body, "removed");
		request_reply(r, 200, body);
	}
	PQclear(res);
	if (tx != NULL && tx->commit(ctx, tx, 0) < 0)
		api_db_error(r, ctx, API_UNIFIED);
}
