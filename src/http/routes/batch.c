/*
 * batch.c - the older path form of a batch cancel (SPEC 3.3):
 * POST /batch/batch-cancel/{batch_id}.
 */
#include "http/routes/batch.h"

#include <string.h>

#include "core/cancel.h"
#include "http/routes/unified.h"

/* force of SPEC 3.3: ?force= and/or {"force": ...}; both given must agree. */
static int batch_force(struct request *r, const cJSON *root)
{
	char q[8];
	int got = request_query(r, "force", q, sizeof(q));
	int from_query = -1, from_body = unified_bool_member(root, "force");

	if (got > 0) {
		if (strcmp(q, "true") == 0 || strcmp(q, "1") == 0)
			from_query = 1;
		else if (strcmp(q, "false") == 0 || strcmp(q, "0") == 0)
			from_query = 0;
	}
	if (got != 0 && from_query < 0) {
		unified_invalid(r, "force must be true, false, 1 or 0");
		return -1;
	}
	if (from_body < 0) {
		unified_invalid(r, "force must be a boolean");
		return -1;
	}
	if (from_query >= 0 && root && cJSON_GetObjectItemCaseSensitive(root, "force") &&
	    from_query != from_body) {
		unified_invalid(r, "force in the query and in the body disagree");
		return -1;
	}
	return from_query >= 0 ? from_query : from_body;
}

/* SPEC 3.3's answer (arg: the request). */
static void batch_answer(const struct cancel_request *req, void *arg)
{
	const struct cancel_item *item = &req->items[0];
	char msg[UNIFIED_MSG_MAX];
	cJSON *body;

	if (item->outcome == CANCEL_NOT_FOUND) {
		api_error(arg, API_UNIFIED, 404, "not_found", "Batch not found");
		return;
	}
	cancel_message(item, req->force, msg, sizeof(msg));
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "batch_id", item->uuid);
	cJSON_AddStringToObject(body, "job_id", item->job_id);
	cJSON_AddStringToObject(body, "status", item->status);
	cJSON_AddNumberToObject(body, "cancelled_count", item->cancelled_count);
	cJSON_AddStringToObject(body, "message", msg);
	request_reply(arg, 200, body);
}

void api_batch_cancel(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct auth_identity who;
	struct cancel_item item;
	struct cancel_request req;
	cJSON *root = NULL;
	int force;

	if (api_auth_unified(r, ctx, &who) < 0 || unified_body(r, ctx, 1, &root) < 0)
		return;
	force = batch_force(r, root);
	cJSON_Delete(root);
	if (force < 0)
		return;
	cancel_request_init(&req, r->route, r->request_id, &item, 1, who.tenant_id, who.key_id, force,
			    "cancelled");
	req.answer = batch_answer;
	req.answer_arg = r;
	if (cancel_add(&req, CANCEL_BATCH, id) < 0) {
		api_error(r, API_UNIFIED, 404, "not_found", "Batch not found");
		return;
	}
	if (cancel_run(ctx, &req) < 0)
		api_db_error(r, ctx, API_UNIFIED);
}
