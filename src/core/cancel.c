/*
 * cancel.c - see cancel.h.
 */
#include "core/cancel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fault.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/outbox.h"
#include "core/providers/registry.h"

void cancel_request_init(struct cancel_request *req, const char *route, const char *request_id,
			 struct cancel_item *items, size_t cap, long long tenant_id, long long key_id,
			 int force, const char *end_reason)
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

/* Whose target an outbox row is: the provider of its (id, provider) pair,
 * configured or not (a row written as failed "not configured" is there too). */
enum cancel_provider {
	CANCEL_PROVIDER_OTHER,
	CANCEL_PROVIDER_LIVEKIT,
	CANCEL_PROVIDER_OPENAI,
};

/* The termination_outbox rows a request wrote, in result order. */
struct cancel_outbox {
	long long *ids;                 /* for outbox_send() */
	enum cancel_provider *provider; /* provider[i] is the row ids[i]'s */
	size_t n, cap;
};

static int cancel_outbox_add(struct cancel_outbox *ob, long long id, const char *provider)
{
	if (ob->n == ob->cap) {
		size_t ncap = ob->cap ? ob->cap * 2 : 16;
		long long *ids = realloc(ob->ids, ncap * sizeof(*ids));
		enum cancel_provider *pv;

		if (ids == NULL)
			return -1;
		ob->ids = ids;
		pv = realloc(ob->provider, ncap * sizeof(*pv));
		if (pv == NULL)
			return -1;
		ob->provider = pv;
		ob->cap = ncap;
	}
	ob->ids[ob->n] = id;
	ob->provider[ob->n++] = strcmp(provider, "livekit") == 0  ? CANCEL_PROVIDER_LIVEKIT
				: strcmp(provider, "openai") == 0 ? CANCEL_PROVIDER_OPENAI
								  : CANCEL_PROVIDER_OTHER;
	return 0;
}

/* The (id, provider) pairs of one result row, CANCEL_ROW_OUTBOX's JSON
 * [{"id": 12, "provider": "livekit"}, ...], appended to ob. */
static int cancel_collect_rows(const char *json, struct cancel_outbox *ob)
{
	cJSON *arr = cJSON_Parse(json), *v;
	int rc = cJSON_IsArray(arr) ? 0 : -1;

	for (v = rc == 0 ? arr->child : NULL; v != NULL; v = v->next) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
		const char *provider = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "provider"));

		if (!cJSON_IsNumber(id) || provider == NULL ||
		    cancel_outbox_add(ob, (long long)id->valuedouble, provider) < 0) {
			rc = -1;
			break;
		}
	}
	cJSON_Delete(arr);
	if (rc < 0)
		log_error("cancel: cannot read the outbox rows of callstop_cancel: %.200s", json);
	return rc;
}

/*
 * After commit: send what the cancel queued (SPEC 6) and tell each cancelled
 * call how its targets ended, each by its row's provider.  A provider that
 * is not configured had its row written as failed and is not sent: its
 * target stays CANCEL_TARGET_NOT_CONFIGURED.
 */
static void cancel_terminate(struct worker_ctx *ctx, struct cancel_request *req,
			     const struct cancel_outbox *ob, const size_t *first, const size_t *count)
{
	enum outbox_result *results = calloc(ob->n ? ob->n : 1, sizeof(*results));
	size_t i, j;

	if (results == NULL)
		return;
	if (ob->n > 0)
		fault_after_commit();
	outbox_send(ctx->outbox, ctx->db, ob->ids, ob->n, results);
	if (ob->n > 0)
		fault_after_send();
	for (i = 0; i < req->n; i++) {
		struct cancel_item *it = &req->items[i];

		if (it->outcome != CANCEL_CANCELLED || it->type == CANCEL_BATCH)
			continue;
		for (j = first[i]; j < first[i] + count[i]; j++) {
			if (ob->provider[j] == CANCEL_PROVIDER_LIVEKIT && conf_livekit_enabled(ctx->cfg))
				it->livekit = cancel_target_of(results[j]);
			else if (ob->provider[j] == CANCEL_PROVIDER_OPENAI && conf_openai_enabled(ctx->cfg))
				it->openai = cancel_target_of(results[j]);
		}
	}
	free(results);
}

/* A batch is cancelled entry by entry in the one statement: it gets the
 * long statement_timeout (database_batch_timeout_ms). */
static int cancel_has_batch(const struct cancel_request *req)
{
	size_t i;

	for (i = 0; i < req->n; i++)
		if (req->items[i].type == CANCEL_BATCH)
			return 1;
	return 0;
}

/* Out of memory after commit: the retry child sends the rows (once their
 * grace period is over), so a configured target is worded as queued. */
static void cancel_unsent(const struct worker_ctx *ctx, struct cancel_request *req)
{
	size_t i;

	for (i = 0; i < req->n; i++) {
		struct cancel_item *it = &req->items[i];

		if (it->livekit == CANCEL_TARGET_NOT_CONFIGURED && conf_livekit_enabled(ctx->cfg))
			it->livekit = CANCEL_TARGET_QUEUED;
		if (it->openai == CANCEL_TARGET_NOT_CONFIGURED && conf_openai_enabled(ctx->cfg))
			it->openai = CANCEL_TARGET_QUEUED;
	}
}

/* Item it from row i of DB_CANCEL (enum cancel_row_col). */
static void cancel_read_row(struct cancel_item *it, const PGresult *res, int i)
{
	it->outcome = cancel_outcome_parse(PQgetvalue(res, i, CANCEL_ROW_OUTCOME));
	metrics_cancel(PQgetvalue(res, i, CANCEL_ROW_RESOURCE_TYPE), PQgetvalue(res, i, CANCEL_ROW_OUTCOME));
	snprintf(it->status, sizeof(it->status), "%s", PQgetvalue(res, i, CANCEL_ROW_STATUS));
	it->cancelled_count = atoi(PQgetvalue(res, i, CANCEL_ROW_CANCELLED_COUNT));
	it->pending_cancelled = atoi(PQgetvalue(res, i, CANCEL_ROW_PENDING_CANCELLED));
	it->active_count = atoi(PQgetvalue(res, i, CANCEL_ROW_ACTIVE_COUNT));
	snprintf(it->uuid, sizeof(it->uuid), "%s", PQgetvalue(res, i, CANCEL_ROW_RESOURCE_UUID));
	snprintf(it->job_id, sizeof(it->job_id), "%s", PQgetvalue(res, i, CANCEL_ROW_JOB_ID));
	it->tenant_id = atoll(PQgetvalue(res, i, CANCEL_ROW_TENANT_ID));
	if (it->outcome == CANCEL_CANCELLED && it->type != CANCEL_BATCH) {
		/* until cancel_terminate() knows better */
		it->livekit = PQgetisnull(res, i, CANCEL_ROW_LIVEKIT_ROOM) ? CANCEL_TARGET_NONE
									   : CANCEL_TARGET_NOT_CONFIGURED;
		it->openai = PQgetisnull(res, i, CANCEL_ROW_OPENAI_CALL_ID) ? CANCEL_TARGET_NONE
									    : CANCEL_TARGET_NOT_CONFIGURED;
	}
}

/* DB_CANCEL for req: types and refs as text[] (never JSON: db_text_array()). */
static PGresult *cancel_exec(struct worker_ctx *ctx, const struct cancel_request *req)
{
	const char **types = calloc(req->n ? req->n : 1, sizeof(*types));
	const char **refs = calloc(req->n ? req->n : 1, sizeof(*refs));
	char *types_s = NULL, *refs_s = NULL, *providers_s = NULL, tenant[24], key_id[24];
	PGresult *res = NULL;
	size_t i;

	for (i = 0; types != NULL && refs != NULL && i < req->n; i++) {
		types[i] = cancel_type_name(req->items[i].type);
		refs[i] = req->items[i].ref;
	}
	if (types != NULL && refs != NULL) {
		types_s = db_text_array(types, req->n);
		refs_s = db_text_array(refs, req->n);
	}
	providers_s = provider_enabled_array(ctx->cfg);
	snprintf(tenant, sizeof(tenant), "%lld", req->tenant_id);
	snprintf(key_id, sizeof(key_id), "%lld", req->key_id);
	if (types_s && refs_s && providers_s) {
		const char *params[9] = {
			req->tenant_id ? tenant : NULL,
			types_s,
			refs_s,
			req->force ? "true" : "false",
			req->route,
			req->key_id ? key_id : NULL,
			req->request_id,
			req->end_reason,
			providers_s,
		};
		res = (cancel_has_batch(req) ? db_exec_long : db_exec)(ctx->db, DB_CANCEL, 9, params);
	} else {
		log_error("cancel: out of memory");
	}
	free(types);
	free(refs);
	free(types_s);
	free(refs_s);
	free(providers_s);
	return res;
}

/* Fill req's items from res and collect the outbox rows they wrote into ob
 * (first[i], count[i]: item i's).  0, or -1: the rows are left to the retry
 * child. */
static int cancel_read(struct cancel_request *req, const PGresult *res, struct cancel_outbox *ob,
		       size_t *first, size_t *count)
{
	int rows_ok = first != NULL && count != NULL;
	size_t i;

	for (i = 0; i < req->n; i++) {
		cancel_read_row(&req->items[i], res, (int)i);
		if (rows_ok) {
			first[i] = ob->n;
			if (cancel_collect_rows(PQgetvalue(res, (int)i, CANCEL_ROW_OUTBOX), ob) < 0)
				rows_ok = 0;
			count[i] = ob->n - first[i];
		}
	}
	return rows_ok ? 0 : -1;
}

/* 1 if a row of ob goes to a provider after the commit (a row of a provider
 * not configured was written as failed and is not sent), else 0. */
static int cancel_sends(const struct worker_ctx *ctx, const struct cancel_outbox *ob)
{
	size_t j;

	for (j = 0; j < ob->n; j++)
		if (ob->provider[j] == CANCEL_PROVIDER_OTHER ||
		    (ob->provider[j] == CANCEL_PROVIDER_LIVEKIT && conf_livekit_enabled(ctx->cfg)) ||
		    (ob->provider[j] == CANCEL_PROVIDER_OPENAI && conf_openai_enabled(ctx->cfg)))
			return 1;
	return 0;
}

int cancel_run(struct worker_ctx *ctx, struct cancel_request *req)
{
	struct cancel_outbox ob = { 0 };
	struct ctx_tx *tx = ctx->tx;
	PGresult *res;
	size_t *first = NULL, *count = NULL;
	int rc = -1, rows_ok, sends;

	if (tx != NULL && (rc = tx->begin(ctx, tx, req->tenant_id, req->tenant_id ? 0 : req->key_id)) != 0)
		return rc < 0 ? -1 : 0;
	res = cancel_exec(ctx, req);
	rc = -1;
	if (res != NULL && (size_t)PQntuples(res) == req->n) {
		first = calloc(req->n ? req->n : 1, sizeof(*first));
		count = calloc(req->n ? req->n : 1, sizeof(*count));
		rows_ok = cancel_read(req, res, &ob, first, count) == 0;
		sends = rows_ok && cancel_sends(ctx, &ob);
		if (tx != NULL) {
			/* the answer stored with the effects: what is sent after
			 * the commit is queued until then (a true statement, also
			 * if this process dies before sending) */
			cancel_unsent(ctx, req);
			req->answer(req, req->answer_arg);
			if (tx->commit(ctx, tx, sends) < 0)
				goto out;
		}
		/* Committed: nothing below can undo the cancel.  Rows that
		 * could not be read are left to the retry child. */
		rc = 0;
		if (rows_ok)
			cancel_terminate(ctx, req, &ob, first, count);
		else
			cancel_unsent(ctx, req);
		if (tx == NULL || sends)
			req->answer(req, req->answer_arg);
	} else if (res != NULL) {
		log_error("cancel: callstop_cancel returned %d rows for %zu ids", PQntuples(res), req->n);
	}
out:
	PQclear(res);
	free(ob.ids);
	free(ob.provider);
	free(first);
	free(count);
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
			snprintf(buf, len, "Batch cancelled. %d pending entries cancelled.",
				 it->pending_cancelled);
		else if (force)
			snprintf(
				buf, len,
				"Batch cancelled. %d pending entries cancelled. %d running call(s) forcefully terminated.",
				it->pending_cancelled, it->active_count);
		else
			snprintf(
				buf, len,
				"Batch cancelled. %d pending entries cancelled. %d active call(s) will complete naturally."
				" Use force=true to terminate them.",
				it->pending_cancelled, it->active_count);
		break;
	}
}
