/*
 * batch_pause.c - pause and resume a batch (SPEC 10.1):
 * POST /batch/{batch_id}/pause {"active_calls": "finish" | "hangup"} and
 * POST /batch/{batch_id}/resume; batch_id is a job_id or the batch UUID.
 */
#include "http/routes/batch_pause.h"

#include <string.h>

#include "core/campaign.h"
#include "http/routes/unified.h"

/* active_calls of the body: 0 finish (the default), 1 hangup, -1 after
 * answering 400. */
static int batch_pause_hangup(struct request *r, const cJSON *root)
{
	const cJSON *a = root ? cJSON_GetObjectItemCaseSensitive(root, "active_calls") : NULL;
	const char *s = cJSON_GetStringValue(a);

	if (a == NULL)
		return 0;
	if (s != NULL && strcmp(s, "finish") == 0)
		return 0;
	if (s != NULL && strcmp(s, "hangup") == 0)
		return 1;
	unified_invalid(r, "active_calls must be \"finish\" or \"hangup\"");
	return -1;
}

static void batch_pause_answer(struct request *r, const struct campaign_batch *b, int pause, int hangup)
{
	char msg[UNIFIED_MSG_MAX];
	cJSON *body;

	campaign_batch_message(b, pause, hangup, msg, sizeof(msg));
	if (b->outcome == CAMPAIGN_NOT_FOUND) {
		api_error(r, API_UNIFIED, 404, "not_found", msg);
		return;
	}
	if (b->outcome == CAMPAIGN_TERMINAL) {
		api_error(r, API_UNIFIED, 409, "invalid_state", msg);
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "batch_id", b->batch_id);
	cJSON_AddStringToObject(body, "job_id", b->job_id);
	cJSON_AddStringToObject(body, "status", b->status);
	cJSON_AddNumberToObject(body, "released_count", b->released);
	cJSON_AddNumberToObject(body, "terminated_count", b->terminated);
	cJSON_AddStringToObject(body, "message", msg);
	request_reply(r, 200, body);
}

struct batch_pause_call {
	struct request *r;
	const struct campaign_batch *b;
	int pause, hangup;
};

static void batch_pause_answer_cb(void *arg)
{
	const struct batch_pause_call *c = arg;

	batch_pause_answer(c->r, c->b, c->pause, c->hangup);
}

static void batch_pause_or_resume(struct request *r, struct worker_ctx *ctx, const char *id, int pause)
{
	struct auth_identity who;
	struct campaign_who cw;
	struct campaign_batch b;
	struct batch_pause_call call = { r, &b, pause, 0 };
	cJSON *root = NULL;
	int hangup = 0, rc;

	if (api_auth_unified(r, ctx, &who) < 0 || unified_body(r, ctx, 1, &root) < 0)
		return;
	if (pause)
		hangup = batch_pause_hangup(r, root);
	cJSON_Delete(root);
	if (hangup < 0)
		return;
	if (strlen(id) >= CANCEL_REF_MAX) {
		api_error(r, API_UNIFIED, 404, "not_found", "Batch not found");
		return;
	}
	unified_campaign_who(r, &who, batch_pause_answer_cb, &call, &cw);
	call.hangup = hangup;
	rc = pause ? campaign_pause(ctx, &cw, id, hangup, &b) : campaign_resume(ctx, &cw, id, &b);
	if (rc < 0)
		api_db_error(r, ctx, API_UNIFIED);
}

void api_batch_pause(struct request *r, struct worker_ctx *ctx, const char *id)
{
	batch_pause_or_resume(r, ctx, id, 1);
}

void api_batch_resume(struct request *r, struct worker_ctx *ctx, const char *id)
{
	batch_pause_or_resume(r, ctx, id, 0);
}
