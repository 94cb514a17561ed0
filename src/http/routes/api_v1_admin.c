/*
 * api_v1_admin.c - the admin cancel (SPEC 4.3): end_reason admin_cancel, the
 * OpenAI hangup's Idempotency-Key "admin_hangup_{call_id}_{uuid}" (chosen in
 * sql/003_cancel.sql), best effort: a failed termination is retried from the
 * outbox and never fails the request.
 */
#include "http/routes/api_v1_admin.h"

#include <stdio.h>

#include "core/cancel.h"
#include "common/json.h"

/* SPEC 4.3's answer (arg: the request). */
static void admin_answer(const struct cancel_request *req, void *arg)
{
	const struct cancel_item *item = &req->items[0];
	struct request *r = arg;
	char msg[CANCEL_REF_MAX + 32];
	cJSON *body;

	if (item->outcome != CANCEL_CANCELLED) {
		api_error(r, API_ADMIN, 404, NULL, "Call not found or already ended");
		return;
	}
	r->tenant_id = item->tenant_id;
	snprintf(msg, sizeof(msg), "Call %s canceled", item->given);
	body = cJSON_CreateObject();
	cJSON_AddTrueToObject(body, "ok");
	cJSON_AddStringToObject(body, "message", msg);
	request_reply(r, 200, body);
}

void api_admin_cancel(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct cancel_item item;
	struct cancel_request req;
	long long token_id = 0;

	if (api_auth_admin(r, ctx, &token_id) < 0)
		return;
	/* any tenant; the history row names the admin token */
	cancel_request_init(&req, r->route, r->request_id, &item, 1, 0, token_id, 0, "admin_cancel");
	req.answer = admin_answer;
	req.answer_arg = r;
	if (cancel_add(&req, CANCEL_CALL_OR_OPENAI, id) < 0) {
		api_error(r, API_ADMIN, 404, NULL, "Call not found or already ended");
		return;
	}
	if (cancel_run(ctx, &req) < 0)
		api_db_error(r, ctx, API_ADMIN);
}
