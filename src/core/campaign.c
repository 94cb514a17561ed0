/*
 * campaign.c - see campaign.h.
 */
#include "core/campaign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fault.h"
#include "common/log.h"
#include "core/outbox.h"
#include "core/providers/registry.h"

/* 1 if callstopd has provider (a row's "provider") configured: its rows
 * are written pending and sent; another's are written failed "not
 * configured" (SPEC 6) and are not sent. */
static int campaign_enabled(const struct worker_ctx *ctx, const char *provider)
{
	size_t i;

	for (i = 0; i < provider_count(); i++)
		if (strcmp(provider_table[i]->name, provider) == 0)
			return provider_table[i]->enabled(ctx->cfg);
	return 0;
}

/* The termination_outbox rows a statement wrote that go to a provider
 * (JSON [{"id": n, "provider": "livekit"}, ...]; those of a provider not
 * configured left out), to be sent, and the outcome of each. */
struct campaign_rows {
	long long *ids;
	enum outbox_result *results;
	size_t n;
};

/* Read the rows of json (the statement's outbox column) into rows. */
static void campaign_rows_read(const struct worker_ctx *ctx, const char *json, struct campaign_rows *rows)
{
	cJSON *arr = cJSON_Parse(json), *v;
	int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;

	memset(rows, 0, sizeof(*rows));
	if (n > 0) {
		rows->ids = calloc((size_t)n, sizeof(*rows->ids));
		rows->results = calloc((size_t)n, sizeof(*rows->results));
	}
	if (n > 0 && rows->ids != NULL && rows->results != NULL) {
		cJSON_ArrayForEach(v, arr) {
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
			const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "provider"));

			if (cJSON_IsNumber(id) && p != NULL && campaign_enabled(ctx, p)) {
				/* queued until outbox_send() says otherwise */
				rows->results[rows->n] = OUTBOX_RESULT_QUEUED;
				rows->ids[rows->n++] = (long long)id->valuedouble;
			}
		}
	} else if (n > 0) {
		log_error("campaign: out of memory; %d outbox rows left to the retry child", n);
	}
	cJSON_Delete(arr);
}

static void campaign_rows_free(struct campaign_rows *rows)
{
	free(rows->ids);
	free(rows->results);
}

static void campaign_copy(char *dst, size_t len, const PGresult *res, int col)
{
	snprintf(dst, len, "%s", PQgetvalue(res, 0, col));
}

/* who's tenant and key id as statement parameters. */
struct campaign_ids {
	char tenant[24];
	char key_id[24];
};

/* Fill ids from who; returns the key id parameter (NULL when who has none). */
static const char *campaign_ids(const struct campaign_who *who, struct campaign_ids *ids)
{
	snprintf(ids->tenant, sizeof(ids->tenant), "%lld", who->tenant_id);
	snprintf(ids->key_id, sizeof(ids->key_id), "%lld", who->key_id);
	return who->key_id ? ids->key_id : NULL;
}

/*
 * One statement of sql/010_campaign.sql (its one row read by read() before
 * each answer), then its termination_outbox rows of configured providers
 * sent at once (SPEC 6); rows that cannot be read or sent stay for the
 * retry child, after their grace period: nothing committed is lost.
 *
 * Under the request's Idempotency-Key (ctx->tx, SPEC 8) the statement runs
 * in the key's transaction: who->answer() writes the answer before the
 * commit - with what goes out after it worded as queued, true even if this
 * process dies before sending - and again once the rows are answered.
 * Returns 0 (answered, or the request layer answered: a replay, 409, 422),
 * or -1 if the database failed: nothing changed, or the commit's outcome
 * is unknown (logged).
 */
struct campaign_stmt {
	enum db_stmt stmt;
	int nparams;
	const char **params; /* with providers, the last is filled by campaign_run() */
	int providers;       /* the last parameter is the configured providers (text[]) */
	int outbox_col;
	void (*read)(struct worker_ctx *ctx, const PGresult *res, const struct campaign_rows *rows,
		     void *out);
	void *out;
};

static int campaign_exec(struct worker_ctx *ctx, const struct campaign_who *who,
			 const struct campaign_stmt *st)
{
	struct campaign_rows rows = { 0 };
	struct ctx_tx *tx = ctx->tx;
	PGresult *res;
	int rc, sending;

	if (tx != NULL && (rc = tx->begin(ctx, tx, who->tenant_id, 0)) != 0)
		return rc < 0 ? -1 : 0;
	res = db_exec_long(ctx->db, st->stmt, st->nparams, st->params);
	if (res == NULL || PQntuples(res) != 1) {
		if (res != NULL)
			log_error("campaign: %s returned %d rows, 1 expected", db_statements[st->stmt].name,
				  PQntuples(res));
		PQclear(res);
		return -1;
	}
	campaign_rows_read(ctx, PQgetvalue(res, 0, st->outbox_col), &rows);
	sending = rows.n > 0;
	rc = 0;
	if (tx != NULL) {
		st->read(ctx, res, &rows, st->out); /* nothing sent yet: queued */
		who->answer(who->answer_arg);
		if (tx->commit(ctx, tx, sending) < 0) {
			rc = -1;
			goto out;
		}
	}
	if (sending) {
		fault_after_commit();
		outbox_send(ctx->outbox, ctx->db, rows.ids, rows.n, rows.results);
		fault_after_send();
	}
	if (tx == NULL || sending) {
		st->read(ctx, res, &rows, st->out);
		who->answer(who->answer_arg);
	}
out:
	campaign_rows_free(&rows);
	PQclear(res);
	return rc;
}

/* campaign_exec() with the configured providers as st's last parameter. */
static int campaign_run(struct worker_ctx *ctx, const struct campaign_who *who,
			const struct campaign_stmt *st)
{
	char *providers = NULL;
	int rc;

	if (st->providers) {
		if ((providers = provider_enabled_array(ctx->cfg)) == NULL) {
			log_error("campaign: out of memory");
			return -1;
		}
		st->params[st->nparams - 1] = providers;
	}
	rc = campaign_exec(ctx, who, st);
	free(providers);
	return rc;
}

/* The one row of DB_BATCH_PAUSE / DB_BATCH_RESUME (enum pause_row_col). */
static void campaign_batch_read(struct worker_ctx *ctx, const PGresult *res, const struct campaign_rows *rows,
				void *arg)
{
	struct campaign_batch *out = arg;
	const char *outcome = PQgetvalue(res, 0, PAUSE_ROW_OUTCOME);

	(void)ctx;
	(void)rows;
	out->outcome = strcmp(outcome, "paused") == 0 || strcmp(outcome, "resumed") == 0 ? CAMPAIGN_CHANGED
		       : strcmp(outcome, "terminal") == 0                                ? CAMPAIGN_TERMINAL
		       : strcmp(outcome, "not_found") == 0                               ? CAMPAIGN_NOT_FOUND
											 : CAMPAIGN_NOOP;
	campaign_copy(out->batch_id, sizeof(out->batch_id), res, PAUSE_ROW_BATCH_ID);
	campaign_copy(out->job_id, sizeof(out->job_id), res, PAUSE_ROW_JOB_ID);
	campaign_copy(out->status, sizeof(out->status), res, PAUSE_ROW_STATUS);
	out->released = atoi(PQgetvalue(res, 0, PAUSE_ROW_RELEASED));
	out->terminated = atoi(PQgetvalue(res, 0, PAUSE_ROW_TERMINATED));
	out->active = atoi(PQgetvalue(res, 0, PAUSE_ROW_ACTIVE));
}

int campaign_pause(struct worker_ctx *ctx, const struct campaign_who *who, const char *ref, int hangup,
		   struct campaign_batch *out)
{
	struct campaign_ids ids;
	const char *key_id = campaign_ids(who, &ids);
	const char *params[7] = {
		ids.tenant, ref, hangup ? "true" : "false", who->route, key_id, who->request_id, NULL,
	};
	/* a hangup cancels the batch's calls in the one statement */
	struct campaign_stmt st = {
		DB_BATCH_PAUSE, 7, params, 1, PAUSE_ROW_OUTBOX, campaign_batch_read, out
	};

	memset(out, 0, sizeof(*out));
	return campaign_run(ctx, who, &st);
}

int campaign_resume(struct worker_ctx *ctx, const struct campaign_who *who, const char *ref,
		    struct campaign_batch *out)
{
	struct campaign_ids ids;
	const char *key_id = campaign_ids(who, &ids);
	const char *params[5] = { ids.tenant, ref, who->route, key_id, who->request_id };
	struct campaign_stmt st = {
		DB_BATCH_RESUME, 5, params, 0, PAUSE_ROW_OUTBOX, campaign_batch_read, out
	};

	memset(out, 0, sizeof(*out));
	return campaign_run(ctx, who, &st);
}

void campaign_batch_message(const struct campaign_batch *b, int pause, int hangup, char *buf, size_t len)
{
	if (b->outcome == CAMPAIGN_NOT_FOUND) {
		snprintf(buf, len, "Batch not found");
	} else if (b->outcome == CAMPAIGN_TERMINAL) {
		snprintf(buf, len, "Batch already in terminal state: %s", b->status);
	} else if (b->outcome == CAMPAIGN_NOOP) {
		snprintf(buf, len, "%s", pause ? "Batch already paused." : "Batch not paused.");
	} else if (!pause) {
		snprintf(buf, len, "Batch resumed.");
	} else if (hangup && b->terminated > 0) {
		snprintf(buf, len, "Batch paused. %d claimed entries released. %d active call(s) terminated.",
			 b->released, b->terminated);
	} else if (!hangup && b->active > 0) {
		snprintf(
			buf, len,
			"Batch paused. %d claimed entries released. %d active call(s) will complete naturally.",
			b->released, b->active);
	} else {
		snprintf(buf, len, "Batch paused. %d claimed entries released.", b->released);
	}
}

int campaign_is_e164(const char *s)
{
	size_t digits;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return 0;
	digits = strspn(s + 1, "0123456789");
	/* [1-9] then 6 to 14 more */
	return s[1 + digits] == '\0' && digits >= 7 && digits <= 15;
}

/* The one row of DB_SUPPRESS (enum suppress_row_col). */
static void campaign_suppress_read(struct worker_ctx *ctx, const PGresult *res,
				   const struct campaign_rows *rows, void *arg)
{
	struct campaign_suppress *out = arg;

	(void)ctx;
	(void)rows;
	out->added = atoi(PQgetvalue(res, 0, SUPPRESS_ROW_ADDED));
	out->already = atoi(PQgetvalue(res, 0, SUPPRESS_ROW_ALREADY));
	out->entries_cancelled = atoi(PQgetvalue(res, 0, SUPPRESS_ROW_ENTRIES_CANCELLED));
	out->calls_cancelled = atoi(PQgetvalue(res, 0, SUPPRESS_ROW_CALLS_CANCELLED));
}

int campaign_suppress(struct worker_ctx *ctx, const struct campaign_who *who, const char *const *numbers,
		      size_t n, const char *reason, int hangup, struct campaign_suppress *out)
{
	struct campaign_ids ids;
	const char *key_id = campaign_ids(who, &ids);
	char *list = db_text_array(numbers, n);
	const char *params[8] = {
		ids.tenant, list,   reason,          hangup ? "true" : "false",
		who->route, key_id, who->request_id, NULL,
	};
	struct campaign_stmt st = { DB_SUPPRESS, 8, params, 1, SUPPRESS_ROW_OUTBOX, campaign_suppress_read,
				    out };
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (list != NULL)
		rc = campaign_run(ctx, who, &st);
	else
		log_error("campaign: out of memory");
	free(list);
	return rc;
}

/* What became of the target of provider among a call's rows (cancel.c's rule:
 * the row of a provider callstopd has configured tells; else not configured). */
static enum cancel_target campaign_target(struct worker_ctx *ctx, const cJSON *outbox, const char *provider,
					  const struct campaign_rows *rows)
{
	int enabled = campaign_enabled(ctx, provider);
	const cJSON *v;
	size_t i;

	cJSON_ArrayForEach(v, outbox) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
		const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "provider"));

		if (!enabled || p == NULL || strcmp(p, provider) != 0 || !cJSON_IsNumber(id))
			continue;
		for (i = 0; i < rows->n; i++) {
			if (rows->ids[i] != (long long)id->valuedouble)
				continue;
			return rows->results[i] == OUTBOX_RESULT_DONE     ? CANCEL_TARGET_DONE
			       : rows->results[i] == OUTBOX_RESULT_FAILED ? CANCEL_TARGET_FAILED
									  : CANCEL_TARGET_QUEUED;
		}
		return CANCEL_TARGET_QUEUED;
	}
	return CANCEL_TARGET_NOT_CONFIGURED;
}

/* The "calls" of SPEC 10.2 from the statement's JSON: each call's message
 * worded as SPEC 3.1's (what its rooms and hangups became), or the dry run's. */
static cJSON *campaign_calls(struct worker_ctx *ctx, const char *json, int dry_run,
			     const struct campaign_rows *rows)
{
	cJSON *in = cJSON_Parse(json), *out = cJSON_CreateArray(), *v;

	cJSON_ArrayForEach(v, in) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "call_log_id"));
		const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "status"));
		const cJSON *outbox = cJSON_GetObjectItemCaseSensitive(v, "outbox");
		struct cancel_item it;
		char msg[256];
		cJSON *o;

		if (id == NULL || status == NULL)
			continue;
		memset(&it, 0, sizeof(it));
		it.type = CANCEL_CALL;
		it.outcome = CANCEL_CANCELLED;
		if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(v, "livekit_room")))
			it.livekit = campaign_target(ctx, outbox, "livekit", rows);
		if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(v, "openai_call_id")))
			it.openai = campaign_target(ctx, outbox, "openai", rows);
		if (dry_run)
			snprintf(msg, sizeof(msg), "Dry run: the call would be cancelled.");
		else
			cancel_message(&it, 1, msg, sizeof(msg));
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "call_log_id", id);
		cJSON_AddStringToObject(o, "status", status);
		cJSON_AddStringToObject(o, "message", msg);
		cJSON_AddItemToArray(out, o);
	}
	cJSON_Delete(in);
	return out;
}

/* The one row of DB_CANCEL_MATCHING (enum match_row_col); the calls' words
 * from rows' outcomes (queued until they are sent). */
static void campaign_match_read(struct worker_ctx *ctx, const PGresult *res, const struct campaign_rows *rows,
				void *arg)
{
	struct campaign_match *out = arg;

	out->too_many = strcmp(PQgetvalue(res, 0, MATCH_ROW_OUTCOME), "too_many") == 0;
	out->matched_calls = atoi(PQgetvalue(res, 0, MATCH_ROW_CALLS_MATCHED));
	out->matched_entries = atoi(PQgetvalue(res, 0, MATCH_ROW_ENTRIES_MATCHED));
	out->cancelled_count = atoi(PQgetvalue(res, 0, MATCH_ROW_CANCELLED));
	cJSON_Delete(out->calls);
	out->calls = campaign_calls(ctx, PQgetvalue(res, 0, MATCH_ROW_CALLS), out->dry_run, rows);
}

int campaign_cancel_matching(struct worker_ctx *ctx, const struct campaign_who *who,
			     const struct campaign_match_req *req, struct campaign_match *out)
{
	struct campaign_ids ids;
	const char *key_id = campaign_ids(who, &ids);
	char max[16];
	const char *params[10] = {
		ids.tenant,
		req->filter_json,
		req->all_active ? "true" : "false",
		req->include_entries ? "true" : "false",
		req->dry_run ? "true" : "false",
		max,
		who->route,
		key_id,
		who->request_id,
		NULL,
	};
	struct campaign_stmt st = { DB_CANCEL_MATCHING,  10, params, 1, MATCH_ROW_OUTBOX,
				    campaign_match_read, out };

	memset(out, 0, sizeof(*out));
	out->dry_run = req->dry_run;
	snprintf(max, sizeof(max), "%d", req->max);
	return campaign_run(ctx, who, &st);
}
