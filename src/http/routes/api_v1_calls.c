/*
 * api_v1_calls.c - the Heppu-style calls API (SPEC 4.1): the shapes, names and
 * codes its clients already parse, over the one cancel core.
 */
#include "http/routes/api_v1_calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "common/json.h"
#include "common/states.h"

#define HEPPU_LIMIT_DEFAULT 20
#define HEPPU_LIMIT_MAX 100
#define HEPPU_PAGE_MAX 1000000

static void heppu_error(struct request *r, int status, const char *message)
{
	api_error(r, API_HEPPU, status, NULL, message);
}

/*
 * A call id this tenant cannot see: 403 if it is another tenant's call
 * (Heppu documents that answer), else 404.
 */
static void heppu_not_visible(struct request *r, struct worker_ctx *ctx, const char *id)
{
	const char *params[1] = { id };
	PGresult *res = db_exec(ctx->db, DB_CALL_TENANT, 1, params);

	if (res == NULL)
		api_db_error(r, ctx, API_HEPPU);
	else if (PQntuples(res) == 1)
		heppu_error(r, 403, "Access denied - call belongs to different organization");
	else
		heppu_error(r, 404, "Call not found");
	PQclear(res);
}

struct heppu_answer_arg {
	struct request *r;
	struct worker_ctx *ctx;
};

/* SPEC 4.1's answers to DELETE. */
static void heppu_answer(const struct cancel_request *req, void *arg)
{
	const struct heppu_answer_arg *a = arg;
	const struct cancel_item *item = &req->items[0];
	char msg[96];
	cJSON *body, *data;

	switch (item->outcome) {
	case CANCEL_NOT_FOUND:
		heppu_not_visible(a->r, a->ctx, item->ref);
		return;
	case CANCEL_TERMINAL:
	case CANCEL_ALREADY_CANCELLED:
		snprintf(msg, sizeof(msg), "Cannot cancel call with status: %s",
			 states_heppu_name(item->status));
		heppu_error(a->r, 400, msg);
		return;
	case CANCEL_CANCELLED:
	default:
		break;
	}
	body = cJSON_CreateObject();
	data = cJSON_AddObjectToObject(body, "data");
	cJSON_AddStringToObject(data, "id", item->uuid);
	cJSON_AddStringToObject(data, "status", "cancelled");
	cJSON_AddStringToObject(body, "message", "Call cancelled successfully");
	request_reply(a->r, 200, body);
}

void api_heppu_cancel(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct heppu_answer_arg arg = { r, ctx };
	struct auth_identity who;
	struct cancel_item item;
	struct cancel_request req;

	if (api_auth_key(r, ctx, API_HEPPU, &who) < 0)
		return;
	cancel_request_init(&req, r->route, r->request_id, &item, 1, who.tenant_id, who.key_id, 0,
			    "cancelled");
	req.answer = heppu_answer;
	req.answer_arg = &arg;
	if (cancel_add(&req, CANCEL_CALL, id) < 0) {
		heppu_error(r, 404, "Call not found");
		return;
	}
	if (cancel_run(ctx, &req) < 0)
		api_db_error(r, ctx, API_HEPPU);
}

/* One call row of DB_HEPPU_CALL / DB_HEPPU_LIST* in Heppu's field names. */
static cJSON *heppu_call(const PGresult *res, int row)
{
	static const struct {
		const char *name;
		enum heppu_call_col col;
	} fields[] = {
		{ "id", HEPPU_CALL_ID },
		{ "status", HEPPU_CALL_STATUS },
		{ "agentId", HEPPU_CALL_AGENT_ID },
		{ "toNumber", HEPPU_CALL_TO_NUMBER },
		{ "batchId", HEPPU_CALL_BATCH_ID },
		{ "createdAt", HEPPU_CALL_CREATED_AT },
		{ "startedAt", HEPPU_CALL_STARTED_AT },
		{ "endedAt", HEPPU_CALL_ENDED_AT },
		{ "endReason", HEPPU_CALL_END_REASON },
	};
	cJSON *o = cJSON_CreateObject();
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		json_add_string_or_null(
			o, fields[i].name,
			PQgetisnull(res, row, fields[i].col) ? NULL : PQgetvalue(res, row, fields[i].col));
	return o;
}

void api_heppu_get(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct auth_identity who;
	PGresult *res;
	cJSON *body;

	if (api_auth_key(r, ctx, API_HEPPU, &who) < 0)
		return;
	switch (db_fetch_one(ctx->db, DB_HEPPU_CALL, who.tenant_id, id, &res)) {
	case DB_FETCH_FOUND:
		break;
	case DB_FETCH_NOT_FOUND:
		heppu_not_visible(r, ctx, id);
		return;
	case DB_FETCH_ERROR:
	default:
		api_db_error(r, ctx, API_HEPPU);
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddItemToObject(body, "data", heppu_call(res, 0));
	PQclear(res);
	request_reply(r, 200, body);
}

/* A positive integer query value, or dflt if absent; -1 if malformed. */
static long heppu_int(struct request *r, const char *name, long dflt)
{
	char v[16];
	char *end = NULL;
	long n;
	int got = request_query(r, name, v, sizeof(v));

	if (got == 0)
		return dflt;
	if (got < 0 || v[0] < '0' || v[0] > '9')
		return -1;
	n = strtol(v, &end, 10);
	return *end == '\0' && n >= 1 ? n : -1;
}

void api_heppu_list(struct request *r, struct worker_ctx *ctx, const char *unused)
{
	struct auth_identity who;
	char tenant[24], agent[129], status[32], start_raw[64], end_raw[64],
		start[64] = "-infinity", end[64] = "infinity", limit_s[16], offset_s[24];
	const char *params[7];
	int has_agent, has_status, nparams = 5, i, n;
	long page, limit;
	enum db_stmt stmt;
	PGresult *res;
	cJSON *body, *data, *calls, *pagination;

	if (api_auth_key(r, ctx, API_HEPPU, &who) < 0)
		return;
	page = heppu_int(r, "page", 1);
	limit = heppu_int(r, "limit", HEPPU_LIMIT_DEFAULT);
	has_agent = request_query(r, "agentId", agent, sizeof(agent));
	has_status = request_query(r, "status", status, sizeof(status));
	if (page < 1 || page > HEPPU_PAGE_MAX) {
		heppu_error(r, 400, "page must be a positive integer");
		return;
	}
	if (limit < 1) {
		heppu_error(r, 400, "limit must be a positive integer");
		return;
	}
	if (limit > HEPPU_LIMIT_MAX)
		limit = HEPPU_LIMIT_MAX;
	if (has_agent < 0 || (has_agent > 0 && agent[0] == '\0')) {
		heppu_error(r, 400, "Invalid agentId");
		return;
	}
	if (has_status < 0 || (has_status > 0 && !states_is_heppu_status(status))) {
		heppu_error(r, 400, "Invalid status filter");
		return;
	}
	if ((i = request_query(r, "startDate", start_raw, sizeof(start_raw))) != 0 &&
	    (i < 0 || request_time(start_raw, start, sizeof(start)) < 0)) {
		heppu_error(r, 400, "startDate must be an RFC 3339 date-time or a date (YYYY-MM-DD)");
		return;
	}
	if ((i = request_query(r, "endDate", end_raw, sizeof(end_raw))) != 0 &&
	    (i < 0 || request_time(end_raw, end, sizeof(end)) < 0)) {
		heppu_error(r, 400, "endDate must be an RFC 3339 date-time or a date (YYYY-MM-DD)");
		return;
	}

	snprintf(tenant, sizeof(tenant), "%lld", who.tenant_id);
	/* one more row than asked tells whether another page follows */
	snprintf(limit_s, sizeof(limit_s), "%ld", limit + 1);
	snprintf(offset_s, sizeof(offset_s), "%ld", (page - 1) * limit);
	params[0] = tenant;
	params[1] = start;
	params[2] = end;
	params[3] = limit_s;
	params[4] = offset_s;
	if (has_agent > 0)
		params[nparams++] = agent;
	if (has_status > 0)
		params[nparams++] = status;
	stmt = has_agent > 0 ? (has_status > 0 ? DB_HEPPU_LIST_AGENT_STATUS : DB_HEPPU_LIST_AGENT)
			     : (has_status > 0 ? DB_HEPPU_LIST_STATUS : DB_HEPPU_LIST);
	res = db_exec(ctx->db, stmt, nparams, params);
	if (res == NULL) {
		api_db_error(r, ctx, API_HEPPU);
		return;
	}
	body = cJSON_CreateObject();
	data = cJSON_AddObjectToObject(body, "data");
	calls = cJSON_AddArrayToObject(data, "calls");
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		cJSON_AddItemToArray(calls, heppu_call(res, i));
	pagination = cJSON_AddObjectToObject(data, "pagination");
	cJSON_AddNumberToObject(pagination, "page", (double)page);
	cJSON_AddNumberToObject(pagination, "limit", (double)limit);
	cJSON_AddBoolToObject(pagination, "hasMore", n > limit);
	PQclear(res);
	request_reply(r, 200, body);
}
