/*
 * internal.c - see internal.h.
 */
#include "http/routes/internal.h"

#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/db_schema.h"
#include "common/ready.h"
#include "common/json.h"
#include "common/listen.h"
#include "common/metrics.h"
#include "common/scoreboard.h"

static const char *const api_internal_states[] = {
	[SCOREBOARD_FREE] = "free",
	[SCOREBOARD_STARTING] = "starting",
	[SCOREBOARD_IDLE] = "idle",
	[SCOREBOARD_BUSY] = "busy",
};

int api_internal_allowed(const struct request *r)
{
	const char *v = request_param(r, "CALLSTOP_INTERNAL");

	return v != NULL && strcmp(v, "1") == 0;
}

static cJSON *api_internal_workers(int64_t now)
{
	cJSON *arr = cJSON_CreateArray();
	struct scoreboard_proc p;
	int i, n = scoreboard_size();

	for (i = 0; i < n; i++) {
		cJSON *w;

		if (scoreboard_read(i, &p) < 0)
			continue;
		w = cJSON_CreateObject();
		cJSON_AddNumberToObject(w, "pid", (double)p.pid);
		cJSON_AddStringToObject(w, "kind",
					p.kind == SCOREBOARD_RETRY      ? "retry"
					: p.kind == SCOREBOARD_DELIVERY ? "delivery"
									: "worker");
		cJSON_AddNumberToObject(w, "slot", p.slot);
		cJSON_AddNumberToObject(w, "generation", p.gen);
		cJSON_AddStringToObject(w, "state", api_internal_states[p.state]);
		cJSON_AddNumberToObject(w, "start_since",
					p.started_ms ? (double)((now - p.started_ms) / 1000) : 0);
		cJSON_AddNumberToObject(w, "requests", (double)p.requests);
		if (p.state == SCOREBOARD_BUSY) {
			cJSON_AddNumberToObject(w, "request_duration_ms", (double)(now - p.request_start_ms));
			cJSON_AddStringToObject(w, "request_method", p.method);
			cJSON_AddStringToObject(w, "request_uri", p.uri);
			cJSON_AddStringToObject(w, "request_id", p.request_id);
		}
		cJSON_AddItemToArray(arr, w);
	}
	return arr;
}

void api_internal_status(struct request *r, struct worker_ctx *ctx, const char *id)
{
	struct scoreboard_totals t;
	unsigned queue = 0, backlog = 0;
	int64_t now = clock_monotonic_ms();
	int have_queue;
	cJSON *body;

	(void)id;
	if (!api_internal_allowed(r)) {
		api_error(r, API_UNIFIED, 404, "not_found", "Not found");
		return;
	}
	scoreboard_totals(&t);
	have_queue = listen_queue(ctx->listen_fd, &queue, &backlog) == 0;

	/* php-fpm's status fields, in snake_case */
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "pool", "callstopd");
	cJSON_AddStringToObject(body, "process_manager", "static");
	cJSON_AddNumberToObject(body, "start_time", (double)t.start_time);
	cJSON_AddNumberToObject(body, "start_since", (double)(time(NULL) - t.start_time));
	cJSON_AddNumberToObject(body, "generation", t.gen);
	cJSON_AddNumberToObject(body, "accepted_conn", (double)t.accepted);
	if (have_queue) {
		cJSON_AddNumberToObject(body, "listen_queue", queue);
		cJSON_AddNumberToObject(body, "listen_queue_len", backlog);
	} else {
		cJSON_AddNullToObject(body, "listen_queue");
		cJSON_AddNullToObject(body, "listen_queue_len");
	}
	cJSON_AddNumberToObject(body, "max_listen_queue", (double)t.max_listen_queue);
	cJSON_AddNumberToObject(body, "idle_processes", t.idle);
	cJSON_AddNumberToObject(body, "active_processes", t.active);
	cJSON_AddNumberToObject(body, "total_processes", t.total);
	cJSON_AddNumberToObject(body, "max_active_processes", (double)t.max_active);
	cJSON_AddNumberToObject(body, "slow_requests", (double)t.slow_requests);
	cJSON_AddNumberToObject(body, "respawns", (double)t.respawns);
	cJSON_AddNumberToObject(body, "db_connections", (double)t.db_connects);
	cJSON_AddNumberToObject(body, "max_requests", ctx->cfg->max_requests);
	cJSON_AddNumberToObject(body, "request_timeout", ctx->cfg->request_timeout);
	cJSON_AddNumberToObject(body, "slow_request_ms", ctx->cfg->slow_request_ms);
	cJSON_AddItemToObject(body, "processes", api_internal_workers(now));
	request_reply(r, 200, body);
}

void api_internal_metrics(struct request *r, struct worker_ctx *ctx, const char *id)
{
	unsigned queue = 0, backlog = 0;
	long lq;

	(void)id;
	if (!api_internal_allowed(r)) {
		api_error(r, API_UNIFIED, 404, "not_found", "Not found");
		return;
	}
	lq = listen_queue(ctx->listen_fd, &queue, &backlog) == 0 ? (long)queue : -1;
	request_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_render(ctx->db, lq));
}

void api_internal_ready(struct request *r, struct worker_ctx *ctx, const char *id)
{
	int version;
	enum db_readiness ready;
	cJSON *body;

	(void)id;
	if (!api_internal_allowed(r)) {
		api_error(r, API_UNIFIED, 404, "not_found", "Not found");
		return;
	}
	ready = db_readiness(ctx->db, &version);
	body = cJSON_CreateObject();
	cJSON_AddBoolToObject(body, "ready", ready == DB_READY);
	cJSON_AddStringToObject(body, "database", ready == DB_DOWN ? "down" : "up");
	if (version >= 0)
		cJSON_AddNumberToObject(body, "schema_version", version);
	else
		cJSON_AddNullToObject(body, "schema_version");
	cJSON_AddNumberToObject(body, "schema_needed", db_schema_needed());
	if (ready != DB_READY)
		request_add_header(r, "Retry-After", "1");
	request_reply(r, ready == DB_READY ? 200 : 503, body);
}
