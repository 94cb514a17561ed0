/*
 * calls.c - the unified routes under /calls (SPEC 3.1, 3.2):
 * POST /calls/cancel and GET /calls/status/{resource_id}.
 */
#include "http/routes/calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/states.h"
#include "core/cancel.h"
#include "core/status.h"
#include "http/routes/unified.h"

/* An id of SPEC 3: a non-empty string of at most 128 bytes. */
static const char *calls_id(const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);

	if (s == NULL || *s == '\0' || strlen(s) >= CANCEL_REF_MAX)
		return NULL;
	return s;
}

static enum cancel_type calls_id_type(const char *id)
{
	return strncmp(id, "batch-", 6) == 0 ? CANCEL_BATCH : CANCEL_CALL;
}

static cJSON *calls_result(const struct cancel_item *it, int force)
{
	char msg[UNIFIED_MSG_MAX];
	cJSON *o = cJSON_CreateObject();

	cancel_message(it, force, msg, sizeof(msg));
	cJSON_AddStringToObject(o, "resource_id", it->given);
	cJSON_AddStringToObject(o, "resource_type", cancel_resource_type(it));
	cJSON_AddStringToObject(o, "status", it->status);
	cJSON_AddNumberToObject(o, "cancelled_count", it->cancelled_count);
	cJSON_AddStringToObject(o, "message", msg);
	return o;
}

struct calls_answer_arg {
	struct request *r;
	int force, single;
};

/* SPEC 3.1's answer: results[], total_cancelled and, for one id, the flat
 * fields beside them. */
static void calls_answer(const struct cancel_request *req, void *arg)
{
	const struct calls_answer_arg *a = arg;
	cJSON *body = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(body, "results");
	int total = 0;
	size_t i;

	for (i = 0; i < req->n; i++) {
		cJSON_AddItemToArray(results, calls_result(&req->items[i], a->force));
		total += req->items[i].cancelled_count;
	}
	cJSON_AddNumberToObject(body, "total_cancelled", total);
	if (a->single) {
		/* the flat v2 answer, beside results (SPEC 3.1) */
		cJSON *one = calls_result(&req->items[0], a->force), *f;
		cJSON_ArrayForEach(f, one)
			cJSON_AddItemToObject(body, f->string, cJSON_Duplicate(f, 1));
		cJSON_Delete(one);
	}
	request_reply(a->r, 200, body);
}

void api_calls_cancel(struct request *r, struct worker_ctx *ctx, const char *unused)
{
	struct calls_answer_arg arg = { r, 0, 0 };
	struct auth_identity who;
	struct cancel_request req = { 0 };
	struct cancel_item *items = NULL;
	const cJSON *rid, *item;
	cJSON *root = NULL;
	int force, single, n;

	if (api_auth_unified(r, ctx, &who) < 0 || unified_body(r, ctx, 0, &root) < 0)
		return;
	rid = cJSON_GetObjectItemCaseSensitive(root, "resource_id");
	force = unified_bool_member(root, "force");
	single = cJSON_IsString(rid);
	n = single ? 1 : cJSON_IsArray(rid) ? cJSON_GetArraySize(rid) : -1;
	if (force < 0) {
		unified_invalid(r, "force must be a boolean");
		goto out;
	}
	if (n < 0) {
		unified_invalid(r, rid ? "resource_id must be a string or a list of strings"
				       : "resource_id is required");
		goto out;
	}
	if (n == 0) {
		unified_invalid(r, "resource_id must not be an empty list");
		goto out;
	}
	if (n > ctx->cfg->max_resources) {
		char msg[UNIFIED_MSG_MAX];
		snprintf(msg, sizeof(msg), "Too many resource ids: %d, at most %d per request", n,
			 ctx->cfg->max_resources);
		api_error(r, API_UNIFIED, 413, "payload_too_large", msg);
		goto out;
	}
	items = calloc((size_t)n, sizeof(*items));
	if (items == NULL) {
		api_error(r, API_UNIFIED, 500, "internal_error", "Out of memory");
		goto out;
	}
	cancel_request_init(&req, r->route, r->request_id, items, (size_t)n, who.tenant_id, who.key_id, force,
			    "cancelled");
	arg.force = force;
	arg.single = single;
	req.answer = calls_answer;
	req.answer_arg = &arg;
	if (single) {
		item = rid;
		if (calls_id(item) == NULL) {
			unified_invalid(r, "resource_id must be a non-empty string of at most 128 bytes");
			goto out;
		}
		if (cancel_add(&req, calls_id_type(item->valuestring), item->valuestring) < 0)
			goto full;
	} else {
		cJSON_ArrayForEach(item, rid) {
			if (calls_id(item) == NULL) {
				unified_invalid(
					r,
					"every resource_id must be a non-empty string of at most 128 bytes");
				goto out;
			}
			/* 1 is a repeated id (SPEC 3.1: one result per distinct id) */
			if (cancel_add(&req, calls_id_type(item->valuestring), item->valuestring) < 0)
				goto full;
		}
	}
	if (cancel_run(ctx, &req) < 0)
		api_db_error(r, ctx, API_UNIFIED);
	goto out;
full:
	/* cannot happen: items has room for every id sent, each checked shorter
	 * than CANCEL_REF_MAX */
	api_error(r, API_UNIFIED, 500, "internal_error", "Internal error: too many ids for the request");
out:
	free(items);
	cJSON_Delete(root);
}

/* limit, cursor and status of a batch page (SPEC 3.2).  Returns 0, or -1
 * after answering 400. */
static int calls_page(struct request *r, struct status_page *page, char *cursor, size_t cursor_len,
		      char *status, size_t status_len)
{
	int got;

	page->cursor = NULL;
	page->status = NULL;
	if ((page->limit = unified_limit(r, STATUS_LIMIT_DEFAULT)) < 0)
		return -1;
	got = request_query(r, "cursor", cursor, cursor_len);
	if (got < 0 || (got > 0 && cursor[0] == '\0')) {
		unified_invalid(r, "cursor is not a cursor this server issued");
		return -1;
	}
	if (got > 0)
		page->cursor = cursor;
	got = request_query(r, "status", status, status_len);
	if (got < 0 || (got > 0 && !states_is_entry_status(status))) {
		unified_invalid(
			r, "status must be one of pending, claimed, running, completed, failed, cancelled");
		return -1;
	}
	if (got > 0)
		page->status = status;
	return 0;
}

void api_calls_status(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct auth_identity who;
	struct status_page page;
	char cursor[128], status[32];
	cJSON *doc = NULL, *body;
	enum status_result res;
	int batch = strncmp(id, "batch-", 6) == 0;

	if (api_auth_unified(r, ctx, &who) < 0)
		return;
	if (strlen(id) >= CANCEL_REF_MAX) {
		api_error(r, API_UNIFIED, 404, "not_found", batch ? "Batch not found" : "Call not found");
		return;
	}
	if (batch) {
		if (calls_page(r, &page, cursor, sizeof(cursor), status, sizeof(status)) < 0)
			return;
		res = status_batch(ctx, who.tenant_id, id, &page, &doc);
	} else {
		res = status_call(ctx, who.tenant_id, id, &doc);
	}
	switch (res) {
	case STATUS_FOUND:
		break;
	case STATUS_NOT_FOUND:
		api_error(r, API_UNIFIED, 404, "not_found", batch ? "Batch not found" : "Call not found");
		return;
	case STATUS_BAD_CURSOR:
		unified_invalid(r, "cursor is not a cursor this server issued for this batch and filter");
		return;
	case STATUS_DB_ERROR:
	default:
		api_db_error(r, ctx, API_UNIFIED);
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "resource_id", id);
	cJSON_AddStringToObject(body, "resource_type", batch ? "batch" : "call");
	if (batch) {
		cJSON *f, *next;
		cJSON_AddStringToObject(body, "status",
					cJSON_GetStringValue(cJSON_GetObjectItem(
						cJSON_GetObjectItem(doc, "batch"), "status")));
		/* move batch, entries, next_cursor over */
		for (f = doc->child; f != NULL; f = next) {
			next = f->next;
			cJSON_AddItemToObject(body, f->string, cJSON_DetachItemViaPointer(doc, f));
		}
		cJSON_Delete(doc);
	} else {
		cJSON_AddStringToObject(body, "status",
					cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status")));
		cJSON_AddItemToObject(body, "call", doc);
	}
	request_reply(r, 200, body);
}
