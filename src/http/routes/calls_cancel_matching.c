/*
 * calls_cancel_matching.c - cancel by filter, with a dry run (SPEC 10.2):
 * POST /calls/cancel-matching {"filter": {...} | "all_active": true,
 * "include_pending_entries": false, "dry_run": false, "max": 1000}.
 *
 * The body is checked here and the filter rebuilt from the fields SPEC 10.2
 * names (times normalised), so that what reaches callstop_cancel_matching()
 * and its history rows is exactly what was understood; the matching, the
 * locks and the cancel are core/campaign.c's.
 */
#include "http/routes/calls_cancel_matching.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/states.h"
#include "core/campaign.h"
#include "http/routes/unified.h"

#define MATCH_MAX_DEFAULT 1000
#define MATCH_MAX_LIMIT 10000
#define MATCH_TEXT_MAX 128 /* bytes, as an id of SPEC 3 */

/* A text field of the filter: absent 0, copied into out 1, bad -1. */
static int match_text(const cJSON *filter, const char *name, cJSON *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(filter, name);
	const char *s = cJSON_GetStringValue(v);

	if (v == NULL)
		return 0;
	if (s == NULL || *s == '\0' || strlen(s) > MATCH_TEXT_MAX)
		return -1;
	cJSON_AddStringToObject(out, name, s);
	return 1;
}

/* A time bound: RFC 3339 (or a bare date, 00:00 UTC), normalised. */
static int match_time(const cJSON *filter, const char *name, cJSON *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(filter, name);
	char t[64];

	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v) || request_time(v->valuestring, t, sizeof(t)) < 0)
		return -1;
	cJSON_AddStringToObject(out, name, t);
	return 1;
}

/* status: a non-empty list of active call states. */
static int match_status(const cJSON *filter, cJSON *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(filter, "status"), *s;
	cJSON *list;

	if (v == NULL)
		return 0;
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
		return -1;
	cJSON_ArrayForEach(s, v)
		if (!cJSON_IsString(s) || !states_call_is_active(s->valuestring))
			return -1;
	list = cJSON_AddArrayToObject(out, "status");
	cJSON_ArrayForEach(s, v)
		cJSON_AddItemToArray(list, cJSON_CreateString(s->valuestring));
	return 1;
}

/* The filter as understood, or NULL after answering 400. */
static cJSON *match_filter(struct request *r, const cJSON *filter)
{
	cJSON *out = cJSON_CreateObject();
	int n = 0, rc;

	if (!cJSON_IsObject(filter)) {
		unified_invalid(r, "filter must be an object");
		goto bad;
	}
#define MATCH_FIELD(call, what) \
	if ((rc = (call)) < 0) { \
		unified_invalid(r, what); \
		goto bad; \
	} \
	n += rc;
	MATCH_FIELD(match_text(filter, "agent_id", out),
		    "filter.agent_id must be a non-empty string of at most 128 bytes")
	MATCH_FIELD(match_text(filter, "to_number", out),
		    "filter.to_number must be a non-empty string of at most 128 bytes")
	MATCH_FIELD(match_text(filter, "batch_job_id", out),
		    "filter.batch_job_id must be a non-empty string of at most 128 bytes")
	MATCH_FIELD(match_status(filter, out),
		    "filter.status must be a non-empty list of initiated, connecting, ringing, running")
	MATCH_FIELD(match_time(filter, "created_after", out), "filter.created_after must be an RFC 3339 time")
	MATCH_FIELD(match_time(filter, "created_before", out),
		    "filter.created_before must be an RFC 3339 time")
#undef MATCH_FIELD
	if (n == 0) {
		unified_invalid(r,
				"filter must have at least one of agent_id, to_number, batch_job_id, status,"
				" created_after, created_before");
		goto bad;
	}
	return out;
bad:
	cJSON_Delete(out);
	return NULL;
}

/* The request's options; 0, or -1 after answering. */
static int match_options(struct request *r, const cJSON *root, struct campaign_match_req *req)
{
	const cJSON *max = cJSON_GetObjectItemCaseSensitive(root, "max");
	int all = unified_bool_member(root, "all_active");

	req->include_entries = unified_bool_member(root, "include_pending_entries");
	req->dry_run = unified_bool_member(root, "dry_run");
	req->max = MATCH_MAX_DEFAULT;
	if (all < 0 || req->include_entries < 0 || req->dry_run < 0) {
		unified_invalid(r, "all_active, include_pending_entries and dry_run must be booleans");
		return -1;
	}
	req->all_active = all;
	if (all == (cJSON_GetObjectItemCaseSensitive(root, "filter") != NULL)) {
		unified_invalid(r, "give either filter or \"all_active\": true, not both and not neither");
		return -1;
	}
	if (max != NULL) {
		if (!cJSON_IsNumber(max) || max->valuedouble < 1 || max->valuedouble > MATCH_MAX_LIMIT ||
		    max->valuedouble != (double)(int)max->valuedouble) {
			unified_invalid(r, "max must be an integer from 1 to 10000");
			return -1;
		}
		req->max = (int)max->valuedouble;
	}
	return 0;
}

/* 409 too_many_matches: SPEC 3's error body and the two counts. */
static void match_too_many(struct request *r, const struct campaign_match *m, int max)
{
	char msg[UNIFIED_MSG_MAX];
	cJSON *body;

	snprintf(msg, sizeof(msg),
		 "%d call(s) and %d pending entries match, more than max %d; nothing was cancelled",
		 m->matched_calls, m->matched_entries, max);
	body = api_error_body(r, API_UNIFIED, 409, "too_many_matches", msg);
	cJSON_AddNumberToObject(body, "matched_calls", m->matched_calls);
	cJSON_AddNumberToObject(body, "matched_entries", m->matched_entries);
	request_reply(r, 409, body);
}

static void match_answer(struct request *r, struct campaign_match *m, int dry_run)
{
	char msg[UNIFIED_MSG_MAX];
	cJSON *body = cJSON_CreateObject();

	if (dry_run)
		snprintf(
			msg, sizeof(msg),
			"Dry run: %d call(s) and %d pending entries would be cancelled. Nothing was changed.",
			m->matched_calls, m->matched_entries);
	else
		snprintf(msg, sizeof(msg), "%d call(s) and %d pending entries cancelled.", m->matched_calls,
			 m->matched_entries);
	cJSON_AddBoolToObject(body, "dry_run", dry_run);
	cJSON_AddNumberToObject(body, "matched_calls", m->matched_calls);
	cJSON_AddNumberToObject(body, "matched_entries", m->matched_entries);
	cJSON_AddNumberToObject(body, "cancelled_count", m->cancelled_count);
	cJSON_AddItemToObject(body, "calls", m->calls ? cJSON_Duplicate(m->calls, 1) : cJSON_CreateArray());
	cJSON_AddStringToObject(body, "message", msg);
	request_reply(r, 200, body);
}

struct match_call {
	struct request *r;
	struct campaign_match *m;
	int max;
};

static void match_answer_cb(void *arg)
{
	struct match_call *c = arg;

	if (c->m->too_many)
		match_too_many(c->r, c->m, c->max);
	else
		match_answer(c->r, c->m, c->m->dry_run);
}

void api_calls_cancel_matching(struct request *r, struct worker_ctx *ctx, const char *unused)
{
	struct auth_identity who;
	struct campaign_who cw;
	struct campaign_match_req req;
	struct campaign_match m = { 0 };
	struct match_call call = { r, &m, 0 };
	cJSON *root = NULL, *filter = NULL;
	char *filter_s = NULL;

	(void)unused;
	if (api_auth_unified(r, ctx, &who) < 0 || unified_body(r, ctx, 0, &root) < 0)
		return;
	if (match_options(r, root, &req) < 0)
		goto out;
	filter = req.all_active ? cJSON_CreateObject()
				: match_filter(r, cJSON_GetObjectItemCaseSensitive(root, "filter"));
	if (filter == NULL)
		goto out;
	if ((filter_s = cJSON_PrintUnformatted(filter)) == NULL) {
		api_error(r, API_UNIFIED, 500, "internal_error", "Out of memory");
		goto out;
	}
	req.filter_json = filter_s;
	unified_campaign_who(r, &who, match_answer_cb, &call, &cw);
	call.max = req.max;
	if (campaign_cancel_matching(ctx, &cw, &req, &m) < 0)
		api_db_error(r, ctx, API_UNIFIED);
out:
	cJSON_Delete(m.calls);
	cJSON_free(filter_s);
	cJSON_Delete(filter);
	cJSON_Delete(root);
}
