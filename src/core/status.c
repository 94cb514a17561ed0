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

/* One member of a SPEC 3.2 document: its name, its column, its JSON type. */
struct status_field {
	const char *name;
	int col;
	enum { STATUS_TEXT, STATUS_INT, STATUS_BOOL, STATUS_NUM } type; /* text, integer, "t"/"f", decimal */
};

#define STATUS_NFIELDS(f) (sizeof(f) / sizeof((f)[0]))

/* The members fields[0..n) of row into obj (SQL NULL: JSON null). */
static void status_add_fields(cJSON *obj, const PGresult *res, int row, const struct status_field *fields,
			      size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct status_field *f = &fields[i];

		if (f->type == STATUS_INT)
			status_add_int(obj, f->name, res, row, f->col);
		else if (f->type == STATUS_NUM && !PQgetisnull(res, row, f->col))
			cJSON_AddNumberToObject(obj, f->name, strtod(PQgetvalue(res, row, f->col), NULL));
		else if (f->type == STATUS_NUM)
			cJSON_AddNullToObject(obj, f->name);
		else if (f->type == STATUS_BOOL)
			cJSON_AddBoolToObject(obj, f->name, strcmp(PQgetvalue(res, row, f->col), "t") == 0);
		else
			status_add_text(obj, f->name, res, row, f->col);
	}
}

/* The first limit rows of res (all: limit < 0), one object each, as an array
 * member name of parent. */
static void status_add_rows(cJSON *parent, const char *name, const PGresult *res, int limit,
			    const struct status_field *fields, size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(parent, name);
	int i;

	for (i = 0; i < PQntuples(res) && (limit < 0 || i < limit); i++) {
		cJSON *o = cJSON_CreateObject();

		status_add_fields(o, res, i, fields, n);
		cJSON_AddItemToArray(arr, o);
	}
}

static const struct status_field status_call_fields[] = {
	{ "id", CALL_STATUS_ID, STATUS_TEXT },
	{ "status", CALL_STATUS_STATUS, STATUS_TEXT },
	{ "batch_job_id", CALL_STATUS_BATCH_JOB_ID, STATUS_TEXT },
	{ "agent_id", CALL_STATUS_AGENT_ID, STATUS_TEXT },
	{ "to_number", CALL_STATUS_TO_NUMBER, STATUS_TEXT },
	{ "livekit_room", CALL_STATUS_LIVEKIT_ROOM, STATUS_TEXT },
	{ "openai_call_id", CALL_STATUS_OPENAI_CALL_ID, STATUS_TEXT },
	{ "created_at", CALL_STATUS_CREATED_AT, STATUS_TEXT },
	{ "started_at", CALL_STATUS_STARTED_AT, STATUS_TEXT },
	{ "ended_at", CALL_STATUS_ENDED_AT, STATUS_TEXT },
	{ "end_reason", CALL_STATUS_END_REASON, STATUS_TEXT },
};

static const struct status_field status_target_fields[] = {
	{ "provider", CALL_TARGETS_PROVIDER, STATUS_TEXT },
	{ "target", CALL_TARGETS_TARGET, STATUS_TEXT },
	{ "state", CALL_TARGETS_STATE, STATUS_TEXT },
	{ "attempts", CALL_TARGETS_ATTEMPTS, STATUS_INT },
	{ "last_error", CALL_TARGETS_LAST_ERROR, STATUS_TEXT },
	{ "verified_at", CALL_TARGETS_VERIFIED_AT, STATUS_TEXT },              /* SPEC 11 */
	{ "seconds_to_silence", CALL_TARGETS_SECONDS_TO_SILENCE, STATUS_NUM }, /* SPEC 11 */
};

static const struct status_field status_batch_fields[] = {
	{ "id", BATCH_STATUS_ID, STATUS_TEXT },
	{ "job_id", BATCH_STATUS_JOB_ID, STATUS_TEXT },
	{ "status", BATCH_STATUS_STATUS, STATUS_TEXT },
	{ "created_at", BATCH_STATUS_CREATED_AT, STATUS_TEXT },
	{ "cancelled_at", BATCH_STATUS_CANCELLED_AT, STATUS_TEXT },
};

static const struct status_field status_count_fields[] = {
	{ "total", BATCH_STATUS_TOTAL, STATUS_INT },     { "pending", BATCH_STATUS_PENDING, STATUS_INT },
	{ "running", BATCH_STATUS_RUNNING, STATUS_INT }, { "completed", BATCH_STATUS_COMPLETED, STATUS_INT },
	{ "failed", BATCH_STATUS_FAILED, STATUS_INT },   { "cancelled", BATCH_STATUS_CANCELLED, STATUS_INT },
};

static const struct status_field status_history_fields[] = {
	{ "at", BATCH_HISTORY_AT, STATUS_TEXT },
	{ "action", BATCH_HISTORY_ACTION, STATUS_TEXT },
	{ "force", BATCH_HISTORY_FORCE, STATUS_BOOL },
	{ "cancelled_count", BATCH_HISTORY_CANCELLED_COUNT, STATUS_INT },
	{ "route", BATCH_HISTORY_ROUTE, STATUS_TEXT },
	{ "key_id", BATCH_HISTORY_KEY_ID, STATUS_INT },
	{ "request_id", BATCH_HISTORY_REQUEST_ID, STATUS_TEXT },
};

static const struct status_field status_entry_fields[] = {
	{ "id", BATCH_ENTRIES_ID, STATUS_INT },
	{ "status", BATCH_ENTRIES_STATUS, STATUS_TEXT },
	{ "call_log_id", BATCH_ENTRIES_CALL_LOG_ID, STATUS_TEXT },
	{ "to_number", BATCH_ENTRIES_TO_NUMBER, STATUS_TEXT },
	{ "updated_at", BATCH_ENTRIES_UPDATED_AT, STATUS_TEXT },
};

/* SPEC 11 (after 3.2): pending while any target is pending or sent, else
 * failed if any is failed or unknown, else done if there is any target,
 * else none. */
static const char *status_termination_state(const PGresult *targets)
{
	int i, n = PQntuples(targets), failed = 0;

	for (i = 0; i < n; i++) {
		const char *s = PQgetvalue(targets, i, CALL_TARGETS_STATE);
		if (strcmp(s, "pending") == 0 || strcmp(s, "sent") == 0)
			return "pending";
		if (strcmp(s, "failed") == 0 || strcmp(s, "unknown") == 0)
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
	cJSON *call, *term;

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
	status_add_fields(call, res, 0, status_call_fields, STATUS_NFIELDS(status_call_fields));
	term = cJSON_AddObjectToObject(call, "termination");
	cJSON_AddStringToObject(term, "state", status_termination_state(targets));
	status_add_rows(term, "targets", targets, -1, status_target_fields,
			STATUS_NFIELDS(status_target_fields));
	PQclear(targets);
	PQclear(res);
	*out = call;
	return STATUS_FOUND;
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
	cJSON *doc, *batch, *counts;
	int64_t after = 0;
	int n;

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
	status_add_fields(batch, res, 0, status_batch_fields, STATUS_NFIELDS(status_batch_fields));
	counts = cJSON_AddObjectToObject(batch, "counts");
	status_add_fields(counts, res, 0, status_count_fields, STATUS_NFIELDS(status_count_fields));
	status_add_rows(batch, "history", hist, -1, status_history_fields,
			STATUS_NFIELDS(status_history_fields));
	status_add_rows(doc, "entries", ent, page->limit, status_entry_fields,
			STATUS_NFIELDS(status_entry_fields));
	n = PQntuples(ent);
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
