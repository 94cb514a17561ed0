/*
 * v1_batch_calls.c - the Trillet-style batch API (SPEC 4.2) over the one cancel
 * core: "stopped" is reported as "cancelled", details come from the batch
 * counters.
 */
#include "http/routes/v1_batch_calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "common/json.h"
#include "common/states.h"

/* x-api-key, then x-workspace-id against the key's tenant.  0 or -1. */
static int trillet_auth(struct request *r, struct worker_ctx *ctx, struct auth_identity *who)
{
	const char *workspace = request_param(r, "HTTP_X_WORKSPACE_ID");

	if (api_auth_key(r, ctx, API_TRILLET, who) < 0)
		return -1;
	if (workspace == NULL || strcmp(workspace, who->workspace_id) != 0) {
		api_error(r, API_TRILLET, 403, "Forbidden", "This API key does not belong to this workspace");
		return -1;
	}
	return 0;
}

static void trillet_not_found(struct request *r, const char *id)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "error", "Batch not found");
	cJSON_AddStringToObject(body, "message", "No batch with the specified ID");
	cJSON_AddStringToObject(body, "id", id);
	request_reply(r, 404, body);
}

/*
 * Answer 200 in SPEC 4.2's shape for batch ref of tenant, read after any
 * change; message NULL = "Batch already in terminal state: <status>".
 */
static void trillet_answer(struct request *r, struct worker_ctx *ctx, long long tenant_id, const char *id,
			   const char *ref, const char *message)
{
	char msg[96];
	const char *status;
	PGresult *res;
	cJSON *body, *details;

	switch (db_fetch_one(ctx->db, DB_BATCH_STATUS, tenant_id, ref, &res)) {
	case DB_FETCH_FOUND:
		break;
	case DB_FETCH_NOT_FOUND:
		trillet_not_found(r, id);
		return;
	case DB_FETCH_ERROR:
	default:
		api_db_error(r, ctx, API_TRILLET);
		return;
	}
	status = states_trillet_name(PQgetvalue(res, 0, BATCH_STATUS_STATUS));
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "Batch already in terminal state: %s", status);
		message = msg;
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "batchId", id);
	cJSON_AddStringToObject(body, "status", status);
	cJSON_AddStringToObject(body, "message", message);
	details = cJSON_AddObjectToObject(body, "details");
	cJSON_AddNumberToObject(details, "completedCalls", atof(PQgetvalue(res, 0, BATCH_STATUS_COMPLETED)));
	cJSON_AddNumberToObject(details, "failedCalls", atof(PQgetvalue(res, 0, BATCH_STATUS_FAILED)));
	cJSON_AddNumberToObject(details, "cancelledCalls", atof(PQgetvalue(res, 0, BATCH_STATUS_CANCELLED)));
	cJSON_AddNumberToObject(details, "totalCalls", atof(PQgetvalue(res, 0, BATCH_STATUS_TOTAL)));
	PQclear(res);
	request_reply(r, 200, body);
}

struct trillet_answer_arg {
	struct request *r;
	struct worker_ctx *ctx;
	long long tenant_id;
	const char *id;
};

/* SPEC 4.2's answers to DELETE. */
static void trillet_cancel_answer(const struct cancel_request *req, void *arg)
{
	const struct trillet_answer_arg *a = arg;
	const struct cancel_item *item = &req->items[0];

	if (item->outcome == CANCEL_NOT_FOUND) {
		trillet_not_found(a->r, a->id);
		return;
	}
	trillet_answer(a->r, a->ctx, a->tenant_id, a->id, item->uuid,
		       item->outcome == CANCEL_CANCELLED ? "Batch cancelled successfully" : NULL);
}

void api_trillet_cancel(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct trillet_answer_arg arg = { r, ctx, 0, id };
	struct auth_identity who;
	struct cancel_item item;
	struct cancel_request req;

	if (trillet_auth(r, ctx, &who) < 0)
		return;
	/* graceful (force 0): active calls finish */
	cancel_request_init(&req, r->route, r->request_id, &item, 1, who.tenant_id, who.key_id, 0,
			    "cancelled");
	arg.tenant_id = who.tenant_id;
	req.answer = trillet_cancel_answer;
	req.answer_arg = &arg;
	if (cancel_add(&req, CANCEL_BATCH, id) < 0) {
		trillet_not_found(r, id);
		return;
	}
	if (cancel_run(ctx, &req) < 0)
		api_db_error(r, ctx, API_TRILLET);
}

void api_trillet_get(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct auth_identity who;

	if (trillet_auth(r, ctx, &who) < 0)
		return;
	trillet_answer(r, ctx, who.tenant_id, id, id, "Batch status");
}
