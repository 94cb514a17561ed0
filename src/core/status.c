/*
 * status.c - see status.h.
 */
#include "core/status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

/* Column c of row as a string, or JSON null for SQL NULL. */
static void status_add_text(cJSON *obj, const char *name, const PGresult *res, int row, int col)
{
	json_add_string_or_null(obj, name, PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col));
}

static void status_add_int(cJSON *obj, const char *name, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddNumberToObject(obj, name, (double)strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* SPEC 3.2: pending if any target is pending, else failed if any failed,
 * else done if there is any target, else none. */
static const char *status_termination_state(const PGresult *targets)
{
	int i, n = PQntuples(targets), failed = 0;

	for (i = 0; i < n; i++) {
		const char *s = PQgetvalue(targets, i, CALL_TARGETS_STATE);
		if (strcmp(s, "pending") == 0)
			return "pending";
		if (strcmp(s, "failed") == 0)
			failed = 1;
	}
	return failed ? "failed" : n > 0 ? "done" : "none";
}

/* The one row of stmt for (tenant_id, id) into *res (the caller clears it). */
static enum status_result status_fetch(struct worker_ctx *ctx, enum db_stmt stmt, long long tenant_id,
				       const char *id, PGresult **res)
{
	switch (db_fetch_one(ctx->db, stmt, tenant_id, id, res)) {
	case DB_FETCH_FOUND:
		return STATUS_FOUND;
	case DB_FETCH_NOT_FOUND:
		return STATUS_NOT_FOUND;
	case DB_FETCH_ERROR:
	default:
		return STATUS_DB_ERROR;
	}
}

enum status_result status_call(struct worker_ctx *ctx, long long tenant_id, const char *id, cJSON **out)
{
	enum status_result rc;
	const char *params[1];
	PGresult *res, *targets;
	cJSON *call, *term, *arr;
	int i;

	rc = status_fetch(ctx, DB_CALL_STATUS, tenant_id, id, &res);
	if (rc != STATUS_FOUND)
		return rc;
	params[0] = PQgetvalue(res, 0, CALL_STATUS_ID);
	targets = db_exec(ctx->db, DB_CALL_TARGETS, 1, params);
	if (targets == NULL) {
		PQclear(res);
		return STATUS_DB_ERROR;
	}
	call = cJSON_CreateObject();
	status_add_text(call, "id", res, 0, CALL_STATUS_ID);
	status_add_text(call, "status", res, 0, CALL_STATUS_STATUS);
	status_add_text(call, "batch_job_id", res, 0, CALL_STATUS_BATCH_JOB_ID);
	status_add_text(call, "agent_id", res, 0, CALL_STATUS_AGENT_ID);
	status_add_text(call, "to_number", res, 0, CALL_STATUS_TO_NUMBER);
	status_add_text(call, "livekit_room", res, 0, CALL_STATUS_LIVEKIT_ROOM);
	status_add_text(call, "openai_call_id", res, 0, CALL_STATUS_OPENAI_CALL_ID);
	status_add_text(call, "created_at", res, 0, CALL_STATUS_CREATED_AT);
	status_add_text(call, "started_at", res, 0, CALL_STATUS_STARTED_AT);
	status_add_text(call, "ended_at", res, 0, CALL_STATUS_ENDED_AT);
	status_add_text(call, "end_reason", res, 0, CALL_STATUS_END_REASON);
	term = cJSON_AddObjectToObject(call, "termination");
	cJSON_AddStringToObject(term, "state", status_termination_state(targets));
	arr = cJSON_AddArrayToObject(term, "targets");
	for (i = 0; i < PQntuples(targets); i++) {
		cJSON *t = cJSON_CreateObject();
		status_add_text(t, "provider", targets, i, CALL_TARGETS_PROVIDER);
		status_add_text(t, "target", targets, i, CALL_TARGETS_TARGET);
		status_add_text(t, "state", targets, i, CALL_TARGETS_STATE);
		status_add_int(t, "attempts", targets, i, CALL_TARGETS_ATTEMPTS);
		status_add_text(t, "last_error", targets, i, CALL_TARGETS_LAST_ERROR);
		cJSON_AddItemToArray(arr, t);
	}
	PQclear(targets);
	PQclear(res);
	*out = call;
	return STATUS_FOUND;
}

static cJSON *status_history(const PGresult *h)
{
	cJSON *arr = cJSON_CreateArray();
	int i;

	for (i = 0; i < PQntuples(h); i++) {
		cJSON *it = cJSON_CreateObject();
		status_add_text(it, "at", h, i, BATCH_HISTORY_AT);
		status_add_text(it, "action", h, i, BATCH_HISTORY_ACTION);
		cJSON_AddBoolToObject(it, "force", strcmp(PQgetvalue(h, i, BATCH_HISTORY_FORCE), "t") == 0);
		status_add_int(it, "cancelled_count", h, i, BATCH_HISTORY_CANCELLED_COUNT);
		status_add_text(it, "route", h, i, BATCH_HISTORY_ROUTE);
		status_add_int(it, "key_id", h, i, BATCH_HISTORY_KEY_ID);
		status_add_text(it, "request_id", h, i, BATCH_HISTORY_REQUEST_ID);
		cJSON_AddItemToArray(arr, it);
	}
	return arr;
}

/* Fetch one page (limit + 1 rows tell whether another page follows). */
static PGresult *status_entries(struct worker_ctx *ctx, const char *batch_id, int64_t after,
				const struct status_page *page)
{
	char after_s[24], limit_s[16];

	snprintf(after_s, sizeof(after_s), "%" PRId64, after);
	snprintf(limit_s, sizeof(limit_s), "%d", page->limit + 1);
	if (page->status == NULL) {
		const char *params[3] = { batch_id, after_s, limit_s };
		return db_exec(ctx->db, DB_BATCH_ENTRIES, 3, params);
	} else {
		/* counts.pending includes claimed entries; so does the filter */
		const char *second = strcmp(page->status, "pending") == 0 ? "claimed" : NULL;
		const char *params[5] = { batch_id, after_s, limit_s, page->status, second };
		return db_exec(ctx->db, DB_BATCH_ENTRIES_BY_STATUS, 5, params);
	}
}

enum status_result status_batch(struct worker_ctx *ctx, long long tenant_id, const char *id,
				const struct status_page *page, cJSON **out)
{
	enum status_result rc;
	char batch_id[37], next[CURSOR_LEN + 1];
	const char *params[1];
	PGresult *res, *hist, *ent;
	cJSON *doc, *batch, *counts, *entries;
	int64_t after = 0;
	int i, n;

	if (ctx_cursor_key(ctx) < 0)
		return STATUS_DB_ERROR;
	rc = status_fetch(ctx, DB_BATCH_STATUS, tenant_id, id, &res);
	if (rc != STATUS_FOUND)
		return rc;
	snprintf(batch_id, sizeof(batch_id), "%s", PQgetvalue(res, 0, BATCH_STATUS_ID));
	if (page->cursor != NULL &&
	    cursor_decode(&ctx->cursor_key, batch_id, page->status, page->cursor, &after) < 0) {
		PQclear(res);
		return STATUS_BAD_CURSOR;
	}
	params[0] = batch_id;
	hist = db_exec(ctx->db, DB_BATCH_HISTORY, 1, params);
	ent = hist ? status_entries(ctx, batch_id, after, page) : NULL;
	if (hist == NULL || ent == NULL) {
		PQclear(res);
		PQclear(hist);
		return STATUS_DB_ERROR;
	}

	doc = cJSON_CreateObject();
	batch = cJSON_AddObjectToObject(doc, "batch");
	status_add_text(batch, "id", res, 0, BATCH_STATUS_ID);
	status_add_text(batch, "job_id", res, 0, BATCH_STATUS_JOB_ID);
	status_add_text(batch, "status", res, 0, BATCH_STATUS_STATUS);
	status_add_text(batch, "created_at", res, 0, BATCH_STATUS_CREATED_AT);
	status_add_text(batch, "cancelled_at", res, 0, BATCH_STATUS_CANCELLED_AT);
	counts = cJSON_AddObjectToObject(batch, "counts");
	status_add_int(counts, "total", res, 0, BATCH_STATUS_TOTAL);
	status_add_int(counts, "pending", res, 0, BATCH_STATUS_PENDING);
	status_add_int(counts, "running", res, 0, BATCH_STATUS_RUNNING);
	status_add_int(counts, "completed", res, 0, BATCH_STATUS_COMPLETED);
	status_add_int(counts, "failed", res, 0, BATCH_STATUS_FAILED);
	status_add_int(counts, "cancelled", res, 0, BATCH_STATUS_CANCELLED);
	cJSON_AddItemToObject(batch, "history", status_history(hist));

	entries = cJSON_AddArrayToObject(doc, "entries");
	n = PQntuples(ent);
	for (i = 0; i < n && i < page->limit; i++) {
		cJSON *e = cJSON_CreateObject();
		status_add_int(e, "id", ent, i, BATCH_ENTRIES_ID);
		status_add_text(e, "status", ent, i, BATCH_ENTRIES_STATUS);
		status_add_text(e, "call_log_id", ent, i, BATCH_ENTRIES_CALL_LOG_ID);
		status_add_text(e, "to_number", ent, i, BATCH_ENTRIES_TO_NUMBER);
		status_add_text(e, "updated_at", ent, i, BATCH_ENTRIES_UPDATED_AT);
		cJSON_AddItemToArray(entries, e);
	}
	if (n > page->limit &&
	    cursor_encode(&ctx->cursor_key, batch_id, page->status,
			  strtoll(PQgetvalue(ent, page->limit - 1, BATCH_ENTRIES_ID), NULL, 10), next) == 0)
		cJSON_AddStringToObject(doc, "next_cursor", next);
	else
		cJSON_AddNullToObject(doc, "next_cursor");
	PQclear(ent);
	PQclear(hist);
	PQclear(res);
	*out = doc;
	return STATUS_FOUND;
}
