/*
 * cancel.c - see cancel.h.
 */
#include "core/cancel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/outbox.h"

/*
 * Test hook (t/ only): CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS makes a worker
 * sleep between the cancel's commit and its termination requests, so a test
 * can kill it there and see the retry child finish the job.
 */
static void cancel_test_pause(void)
{
	const char *ms = getenv("CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS");

	if (ms != NULL && atoi(ms) > 0) {
		log_info("test hook: pausing %s ms after commit", ms);
		usleep((useconds_t)atoi(ms) * 1000);
	}
}

void cancel_request_init(struct cancel_request *req, const char *route, const char *request_id,
			 struct cancel_item *items, size_t cap,
			 long long tenant_id, long long key_id, int force, const char *end_reason)
{
	memset(req, 0, sizeof(*req));
	req->items = items;
	req->cap = cap;
	req->tenant_id = tenant_id;
	req->key_id = key_id;
	req->force = force;
	req->route = route;
	req->request_id = request_id;
	req->end_reason = end_reason;
}

int cancel_add(struct cancel_request *req, enum cancel_type type, const char *id)
{
	struct cancel_item *it;
	char ref[CANCEL_REF_MAX];
	size_t i;

	if (strlen(id) >= sizeof(ref))
		return -1;
	snprintf(ref, sizeof(ref), "%s", id);
	if (ids_is_uuid(ref))
		for (i = 0; ref[i]; i++)
			ref[i] = (char)tolower((unsigned char)ref[i]);
	for (i = 0; i < req->n; i++)
		if (strcmp(req->items[i].ref, ref) == 0)
			return 1;
	if (req->n == req->cap)
		return -1;
	it = &req->items[req->n++];
	memset(it, 0, sizeof(*it));
	it->type = type;
	it->given = id;
	memcpy(it->ref, ref, sizeof(ref));
	return 0;
}

static const char *cancel_type_name(enum cancel_type t)
{
	switch (t) {
	case CANCEL_BATCH:
		return "batch";
	case CANCEL_CALL_OR_OPENAI:
		return "call_or_openai";
	case CANCEL_CALL:
	default:
		return "call";
	}
}

static enum cancel_outcome cancel_outcome_parse(const char *s)
{
	if (strcmp(s, "cancelled") == 0)
		return CANCEL_CANCELLED;
	if (strcmp(s, "terminal") == 0)
		return CANCEL_TERMINAL;
	if (strcmp(s, "already_cancelled") == 0)
		return CANCEL_ALREADY_CANCELLED;
	return CANCEL_NOT_FOUND;
}

/* Providers callstopd can terminate with, as a JSON array for the SQL: a
 * provider not in it gets its rows written as failed "not configured". */
static char *cancel_providers_json(const struct worker_ctx *ctx)
{
	cJSON *arr = cJSON_CreateArray();
	char *s;

	if (conf_livekit_enabled(ctx->cfg))
		cJSON_AddItemToArray(arr, cJSON_CreateString("livekit"));
	if (conf_openai_enabled(ctx->cfg))
		cJSON_AddItemToArray(arr, cJSON_CreateString("openai"));
	s = json_print(arr);
	cJSON_Delete(arr);
	return s;
}

static enum cancel_target cancel_target_of(enum outbox_result r)
{
	switch (r) {
	case OUTBOX_RESULT_DONE:
		return CANCEL_TARGET_DONE;
	case OUTBOX_RESULT_FAILED:
		return CANCEL_TARGET_FAILED;
	case OUTBOX_RESULT_QUEUED:
	default:
		return CANCEL_TARGET_QUEUED;
	}
}

/* The outbox ids of one result row (a JSON array), appended to *ids. */
static int cancel_collect_ids(const char *json, long long **ids, size_t *n, size_t *cap)
{
	cJSON *arr = cJSON_Parse(json), *v;

	if (arr == NULL)
		return -1;
	cJSON_ArrayForEach(v, arr) {
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			long long *grown = realloc(*ids, ncap * sizeof(**ids));
			if (grown == NULL) {
				cJSON_Delete(arr);
				return -1;
			}
			*ids = grown;
			*cap = ncap;
		}
		(*ids)[(*n)++] = (long long)cJSON_GetNumberValue(v);
	}
	cJSON_Delete(arr);
	return 0;
}

/*
 * After commit: send what the cancel queued (SPEC 6) and tell each cancelled
 * call how its targets ended.  A provider that is not configured had its row
 * written as failed and is not sent.
 */
static void cancel_terminate(struct worker_ctx *ctx, struct cancel_request *req, const long long *ids,
			     size_t n, const size_t *first, const size_t *count)
{
	enum outbox_result *results = calloc(n ? n : 1, sizeof(*results));
	size_t i, j;

	if (results == NULL)
		return;
	if (n > 0)
		cancel_test_pause();
	outbox_send(ctx->outbox, ctx->db, ids, n, results);
	for (i = 0; i < req->n; i++) {
		struct cancel_item *it = &req->items[i];

		if (it->outcome != CANCEL_CANCELLED || it->type == CANCEL_BATCH)
			continue;
		/* ids of a call: its livekit row first, then its openai row
		 * (callstop_terminate_calls orders them by id, written in that
		 * order); a row written as failed "not configured" is there
		 * too, and skipped */
		j = first[i];
		if (it->livekit != CANCEL_TARGET_NONE && j < first[i] + count[i]) {
			if (conf_livekit_enabled(ctx->cfg))
				it->livekit = cancel_target_of(results[j]);
			j++;
		}
		if (it->openai != CANCEL_TARGET_NONE && conf_openai_enabled(ctx->cfg) && j < first[i] + count[i])
			it->openai = cancel_target_of(results[j]);
	}
	free(results);
}

static int cancel_has_batch(const struct cancel_request *req)
{
	size_t i;

	for (i = 0; i < req->n; i++)
		if (req->items[i].type == CANCEL_BATCH)
			return 1;
	return 0;
}

int cancel_run(struct worker_ctx *ctx, struct cancel_request *req)
{
	cJSON *types = cJSON_CreateArray(), *refs = cJSON_CreateArray();
	char *types_s = NULL, *refs_s = NULL, *providers_s = NULL;
	char tenant[24], key_id[24];
	PGresult *res = NULL;
	long long *ids = NULL;
	size_t *first = NULL, *count = NULL, nids = 0, cap = 0;
	int rc = -1;
	size_t i;

	for (i = 0; i < req->n; i++) {
		cJSON_AddItemToArray(types, cJSON_CreateString(cancel_type_name(req->items[i].type)));
		cJSON_AddItemToArray(refs, cJSON_CreateString(req->items[i].ref));
	}
	types_s = json_print(types);
	refs_s = json_print(refs);
	providers_s = cancel_providers_json(ctx);
	snprintf(tenant, sizeof(tenant), "%lld", req->tenant_id);
	snprintf(key_id, sizeof(key_id), "%lld", req->key_id);
	if (types_s && refs_s && providers_s) {
		const char *params[9] = {
			req->tenant_id ? tenant : NULL, types_s, refs_s, req->force ? "true" : "false",
			req->route, req->key_id ? key_id : NULL, req->request_id, req->end_reason, providers_s,
		};
		/* a batch is cancelled entry by entry in this one statement:
		 * it gets the long statement_timeout */
		res = (cancel_has_batch(req) ? db_exec_long : db_exec)(ctx->db, DB_CANCEL, 9, params);
	}
	if (res != NULL && (size_t)PQntuples(res) == req->n) {
		first = calloc(req->n, sizeof(*first));
		count = calloc(req->n, sizeof(*count));
		for (i = 0; i < req->n; i++) {
			struct cancel_item *it = &req->items[i];
			int lk_null = PQgetisnull(res, (int)i, 10), oa_null = PQgetisnull(res, (int)i, 11);

			it->outcome = cancel_outcome_parse(PQgetvalue(res, (int)i, 2));
			metrics_cancel(PQgetvalue(res, (int)i, 1), PQgetvalue(res, (int)i, 2));
			snprintf(it->status, sizeof(it->status), "%s", PQgetvalue(res, (int)i, 3));
			it->cancelled_count = atoi(PQgetvalue(res, (int)i, 4));
			it->pending_cancelled = atoi(PQgetvalue(res, (int)i, 5));
			it->active_count = atoi(PQgetvalue(res, (int)i, 6));
			snprintf(it->uuid, sizeof(it->uuid), "%s", PQgetvalue(res, (int)i, 7));
			snprintf(it->job_id, sizeof(it->job_id), "%s", PQgetvalue(res, (int)i, 8));
			it->tenant_id = atoll(PQgetvalue(res, (int)i, 9));
			if (it->outcome == CANCEL_CANCELLED && it->type != CANCEL_BATCH) {
				it->livekit = lk_null ? CANCEL_TARGET_NONE : CANCEL_TARGET_NOT_CONFIGURED;
				it->openai = oa_null ? CANCEL_TARGET_NONE : CANCEL_TARGET_NOT_CONFIGURED;
			}
			if (first != NULL && count != NULL) {
				first[i] = nids;
				cancel_collect_ids(PQgetvalue(res, (int)i, 12), &ids, &nids, &cap);
				count[i] = nids - first[i];
			}
		}
		/* The statement has committed: nothing below can undo the cancel. */
		rc = 0;
		if (first != NULL && count != NULL)
			cancel_terminate(ctx, req, ids, nids, first, count);
	} else if (res != NULL) {
		log_error("cancel: callstop_cancel returned %d rows for %zu ids", PQntuples(res), req->n);
	}
	PQclear(res);
	free(ids);
	free(first);
	free(count);
	cJSON_Delete(types);
	cJSON_Delete(refs);
	free(types_s);
	free(refs_s);
	free(providers_s);
	return rc;
}

const char *cancel_resource_type(const struct cancel_item *it)
{
	return it->type == CANCEL_BATCH ? "batch" : "call";
}

static const char *cancel_target_text(enum cancel_target t, const char *done, const char *queued,
				      const char *failed, const char *unconfigured)
{
	switch (t) {
	case CANCEL_TARGET_DONE:
		return done;
	case CANCEL_TARGET_FAILED:
		return failed;
	case CANCEL_TARGET_QUEUED:
		return queued;
	case CANCEL_TARGET_NOT_CONFIGURED:
		return unconfigured;
	case CANCEL_TARGET_NONE:
	default:
		return "";
	}
}

/* SPEC 3.1, the message column, row by row. */
void cancel_message(const struct cancel_item *it, int force, char *buf, size_t len)
{
	int batch = it->type == CANCEL_BATCH;

	switch (it->outcome) {
	case CANCEL_NOT_FOUND:
		snprintf(buf, len, "%s", batch ? "Batch not found" : "Call not found");
		break;
	case CANCEL_TERMINAL:
		snprintf(buf, len, "%s already in terminal state: %s", batch ? "Batch" : "Call", it->status);
		break;
	case CANCEL_ALREADY_CANCELLED:
		snprintf(buf, len, "Batch already cancelled. %d running call(s) forcefully terminated.",
			 it->active_count);
		break;
	case CANCEL_CANCELLED:
		if (!batch) {
			snprintf(buf, len, "Call cancelled.%s%s",
				 cancel_target_text(it->livekit, " LiveKit room terminated.",
						    " LiveKit room termination queued for retry.",
						    " LiveKit room termination failed.",
						    " LiveKit not configured; room not terminated."),
				 cancel_target_text(it->openai, " OpenAI call hung up.",
						    " OpenAI hangup queued for retry.",
						    " OpenAI hangup failed.",
						    " OpenAI not configured; call not hung up."));
			break;
		}
		if (it->active_count == 0)
			snprintf(buf, len, "Batch cancelled. %d pending entries cancelled.", it->pending_cancelled);
		else if (force)
			snprintf(buf, len,
				 "Batch cancelled. %d pending entries cancelled. %d running call(s) forcefully terminated.",
				 it->pending_cancelled, it->active_count);
		else
			snprintf(buf, len,
				 "Batch cancelled. %d pending entries cancelled. %d active call(s) will complete naturally."
				 " Use force=true to terminate them.",
				 it->pending_cancelled, it->active_count);
		break;
	}
}
