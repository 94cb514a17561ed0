/*
 * metrics.c - see metrics.h.
 */
#include "config.h"

#include "common/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_schema.h"
#include "common/ready.h"
#include "common/scoreboard.h"

static const char *const metrics_types[SCOREBOARD_CANCEL_TYPES] = { "call", "batch" };
static const char *const metrics_outcomes[SCOREBOARD_CANCEL_OUTCOMES] = { "cancelled", "terminal",
									  "already_cancelled", "not_found" };
static const char *const metrics_providers[SCOREBOARD_PROVIDERS] = { "livekit", "openai" };
/* the outbox state written -> the result label */
static const char *const metrics_states[SCOREBOARD_OUTBOX_RESULTS] = { "done", "pending", "failed" };
static const char *const metrics_results[SCOREBOARD_OUTBOX_RESULTS] = { "done", "retry", "failed" };

static const char *const metrics_webhook_outcomes[SCOREBOARD_WEBHOOK_OUTCOMES] = { "delivered", "retry",
										   "failed", "gone" };

static int metrics_lookup(const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void metrics_cancel(const char *resource_type, const char *outcome)
{
	scoreboard_count_cancel(metrics_lookup(resource_type, metrics_types, SCOREBOARD_CANCEL_TYPES),
				metrics_lookup(outcome, metrics_outcomes, SCOREBOARD_CANCEL_OUTCOMES));
}

void metrics_outbox(const char *provider, const char *state)
{
	scoreboard_count_outbox(metrics_lookup(provider, metrics_providers, SCOREBOARD_PROVIDERS),
				metrics_lookup(state, metrics_states, SCOREBOARD_OUTBOX_RESULTS));
}

void metrics_idempotency_stored(void)
{
	scoreboard_count_idempotency(0, 1);
}

void metrics_idempotency_pruned(int n)
{
	if (n > 0)
		scoreboard_count_idempotency(1, (uint64_t)n);
}

void metrics_silence_of(const PGresult *res)
{
	int i;

	for (i = 0; res != NULL && i < PQntuples(res); i++) {
		int p = metrics_lookup(PQgetvalue(res, i, OUTBOX_RESULT_COL_PROVIDER), metrics_providers,
				       SCOREBOARD_PROVIDERS);
		const char *state = PQgetvalue(res, i, OUTBOX_RESULT_COL_STATE);

		if (strcmp(state, "unknown") == 0)
			scoreboard_count_unknown(p);
		else if (strcmp(state, "done") == 0 && !PQgetisnull(res, i, OUTBOX_RESULT_COL_SILENCE))
			scoreboard_count_silence(
				p, (int64_t)(strtod(PQgetvalue(res, i, OUTBOX_RESULT_COL_SILENCE), NULL) *
					     1000));
	}
}

void metrics_escalation(const char *provider)
{
	scoreboard_count_escalation(metrics_lookup(provider, metrics_providers, SCOREBOARD_PROVIDERS));
}

void metrics_webhook(const char *outcome)
{
	scoreboard_count_webhook(
		metrics_lookup(outcome, metrics_webhook_outcomes, SCOREBOARD_WEBHOOK_OUTCOMES));
}

/* ---- exposition ---- */

struct metrics_buf {
	char *s;
	size_t len, cap;
	int failed;
};

static void metrics_printf(struct metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			b->failed = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static void metrics_header(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_requests(struct metrics_buf *b)
{
	size_t r, nr = scoreboard_nroutes();
	int status, k;

	metrics_header(b, "callstop_requests_total", "counter",
		       "Requests answered, by route and HTTP status.");
	for (r = 0; r < nr; r++)
		for (status = 100; status < 600; status++) {
			uint64_t n = scoreboard_route_requests(r, status);
			if (n > 0)
				metrics_printf(
					b, "callstop_requests_total{route=\"%s\",code=\"%d\"} %" PRIu64 "\n",
					scoreboard_route(r), status, n);
		}

	metrics_header(b, "callstop_request_duration_seconds", "histogram",
		       "Time from accept to the answer, by route.");
	for (r = 0; r < nr; r++) {
		uint64_t cum = 0;

		for (k = 0; k <= SCOREBOARD_BUCKETS; k++)
			cum += scoreboard_route_bucket(r, k);
		if (cum == 0)
			continue;
		cum = 0;
		for (k = 0; k < SCOREBOARD_BUCKETS; k++) {
			cum += scoreboard_route_bucket(r, k);
			metrics_printf(
				b,
				"callstop_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64
				"\n",
				scoreboard_route(r), scoreboard_bucket_ms[k] / 1000.0, cum);
		}
		cum += scoreboard_route_bucket(r, SCOREBOARD_BUCKETS);
		metrics_printf(
			b, "callstop_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
			scoreboard_route(r), cum);
		metrics_printf(b, "callstop_request_duration_seconds_sum{route=\"%s\"} %.3f\n",
			       scoreboard_route(r), scoreboard_route_ms_sum(r) / 1000.0);
		metrics_printf(b, "callstop_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
			       scoreboard_route(r), cum);
	}
}

static void metrics_cancels(struct metrics_buf *b)
{
	int t, o;

	metrics_header(b, "callstop_cancels_total", "counter",
		       "Resources named in cancel requests, by resource type and outcome.");
	for (t = 0; t < SCOREBOARD_CANCEL_TYPES; t++)
		for (o = 0; o < SCOREBOARD_CANCEL_OUTCOMES; o++)
			metrics_printf(b,
				       "callstop_cancels_total{resource_type=\"%s\",outcome=\"%s\"} %" PRIu64
				       "\n",
				       metrics_types[t], metrics_outcomes[o], scoreboard_cancels(t, o));

	metrics_header(b, "callstop_outbox_terminations_total", "counter",
		       "Termination attempts (LiveKit DeleteRoom, OpenAI hangup), by provider and result.");
	for (t = 0; t < SCOREBOARD_PROVIDERS; t++)
		for (o = 0; o < SCOREBOARD_OUTBOX_RESULTS; o++)
			metrics_printf(
				b,
				"callstop_outbox_terminations_total{provider=\"%s\",result=\"%s\"} %" PRIu64
				"\n",
				metrics_providers[t], metrics_results[o], scoreboard_outbox(t, o));

	metrics_header(b, "callstop_idempotency_keys_stored_total", "counter",
		       "Idempotency-Keys stored with the answer of the request that ran (SPEC 8).");
	metrics_printf(b, "callstop_idempotency_keys_stored_total %" PRIu64 "\n", scoreboard_idempotency(0));
	metrics_header(b, "callstop_idempotency_keys_pruned_total", "counter",
		       "Expired Idempotency-Keys deleted by the retry child.");
	metrics_printf(b, "callstop_idempotency_keys_pruned_total %" PRIu64 "\n", scoreboard_idempotency(1));
}

/* SPEC 11: seconds from a cancel's commit to verified silence; targets
 * left unknown; escalation rounds. */
static void metrics_verify(struct metrics_buf *b)
{
	int p, k;

	metrics_header(b, "callstop_termination_seconds_to_silence", "histogram",
		       "Seconds from a cancel to its target verified gone, by provider.");
	for (p = 0; p < SCOREBOARD_PROVIDERS; p++) {
		uint64_t cum = 0;

		for (k = 0; k < SCOREBOARD_SILENCE_BUCKETS; k++) {
			cum += scoreboard_silence_bucket(p, k);
			metrics_printf(
				b,
				"callstop_termination_seconds_to_silence_bucket{provider=\"%s\",le=\"%g\"} "
				"%" PRIu64 "\n",
				metrics_providers[p], scoreboard_silence_ms[k] / 1000.0, cum);
		}
		cum += scoreboard_silence_bucket(p, SCOREBOARD_SILENCE_BUCKETS);
		metrics_printf(
			b,
			"callstop_termination_seconds_to_silence_bucket{provider=\"%s\",le=\"+Inf\"} %" PRIu64
			"\n",
			metrics_providers[p], cum);
		metrics_printf(b, "callstop_termination_seconds_to_silence_sum{provider=\"%s\"} %.3f\n",
			       metrics_providers[p], scoreboard_silence_ms_sum(p) / 1000.0);
		metrics_printf(b,
			       "callstop_termination_seconds_to_silence_count{provider=\"%s\"} %" PRIu64 "\n",
			       metrics_providers[p], cum);
	}
	metrics_header(b, "callstop_termination_unknown_total", "counter",
		       "Targets still present after every escalation and verify_deadline, by provider.");
	for (p = 0; p < SCOREBOARD_PROVIDERS; p++)
		metrics_printf(b, "callstop_termination_unknown_total{provider=\"%s\"} %" PRIu64 "\n",
			       metrics_providers[p], scoreboard_unknown(p));
	metrics_header(b, "callstop_termination_escalations_total", "counter",
		       "Escalation rounds (participants removed, room deleted again), by provider.");
	for (p = 0; p < SCOREBOARD_PROVIDERS; p++)
		metrics_printf(b, "callstop_termination_escalations_total{provider=\"%s\"} %" PRIu64 "\n",
			       metrics_providers[p], scoreboard_escalations(p));
}

static void metrics_outbox_depth(struct metrics_buf *b, struct db *db)
{
	PGresult *res = db != NULL ? db_exec(db, DB_OUTBOX_DEPTH, 0, NULL) : NULL;

	metrics_header(b, "callstop_outbox_depth_up", "gauge", "1 if the outbox depth could be read.");
	metrics_printf(b, "callstop_outbox_depth_up %d\n", res != NULL);
	if (res == NULL)
		return;
	metrics_header(b, "callstop_outbox_depth", "gauge",
		       "Outbox rows not done: pending (being retried) and failed (dead-lettered).");
	metrics_printf(b, "callstop_outbox_depth{state=\"pending\"} %s\n",
		       PQgetvalue(res, 0, OUTBOX_DEPTH_PENDING));
	metrics_printf(b, "callstop_outbox_depth{state=\"failed\"} %s\n",
		       PQgetvalue(res, 0, OUTBOX_DEPTH_FAILED));
	metrics_header(b, "callstop_outbox_oldest_pending_seconds", "gauge",
		       "Age of the oldest pending outbox row (0: none pending).");
	metrics_printf(b, "callstop_outbox_oldest_pending_seconds %s\n",
		       PQgetvalue(res, 0, OUTBOX_DEPTH_OLDEST_S));
	PQclear(res);
}

/* Up, the database, the schema and the build (issue 16): what an alert on
 * "database down" and a dashboard's version panel read. */
static void metrics_health(struct metrics_buf *b, struct db *db)
{
	int version = -1;
	enum db_readiness ready = db != NULL ? db_readiness(db, &version) : DB_DOWN;

	metrics_header(b, "callstop_up", "gauge", "1: a callstopd worker answered this scrape.");
	metrics_printf(b, "callstop_up 1\n");
	metrics_header(b, "callstop_database_up", "gauge",
		       "1 if the worker's database connection answered a statement during this scrape.");
	metrics_printf(b, "callstop_database_up %d\n", ready != DB_DOWN);
	metrics_header(b, "callstop_schema_current", "gauge",
		       "1 if the schema has every migration this callstopd needs (callstopctl migrate).");
	metrics_printf(b, "callstop_schema_current %d\n", ready == DB_READY);
	if (version >= 0) {
		metrics_header(b, "callstop_schema_version", "gauge", "The newest migration applied.");
		metrics_printf(b, "callstop_schema_version %d\n", version);
	}
	metrics_header(b, "callstop_build_info", "gauge", "The version of callstopd; always 1.");
	metrics_printf(b, "callstop_build_info{version=\"%s\",schema=\"%d\"} 1\n", PACKAGE_VERSION,
		       db_schema_needed());
}

/* SPEC 9: the delivery children count the attempts in the scoreboard; the
 * events written and the queue are read from the database. */
static void metrics_webhooks(struct metrics_buf *b, struct db *db)
{
	PGresult *res = db != NULL ? db_exec(db, DB_WEBHOOK_DEPTH, 0, NULL) : NULL;
	int o;

	metrics_header(b, "callstop_webhook_deliveries_total", "counter",
		       "Webhook delivery attempts, by outcome (delivered, retry, failed, gone).");
	for (o = 0; o < SCOREBOARD_WEBHOOK_OUTCOMES; o++)
		metrics_printf(b, "callstop_webhook_deliveries_total{outcome=\"%s\"} %" PRIu64 "\n",
			       metrics_webhook_outcomes[o], scoreboard_webhook(o));
	metrics_header(b, "callstop_webhook_depth_up", "gauge", "1 if the webhook queue could be read.");
	metrics_printf(b, "callstop_webhook_depth_up %d\n", res != NULL && PQntuples(res) == 1);
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		return;
	}
	metrics_header(b, "callstop_webhook_events_total", "counter", "Webhook events written.");
	metrics_printf(b, "callstop_webhook_events_total %s\n", PQgetvalue(res, 0, WEBHOOK_DEPTH_EVENTS));
	metrics_header(
		b, "callstop_webhook_queue_depth", "gauge",
		"Webhook deliveries by state: pending (not delivered yet, cancels announced but not yet"
		" written as events included) and failed (given up).");
	metrics_printf(b, "callstop_webhook_queue_depth{state=\"pending\"} %s\n",
		       PQgetvalue(res, 0, WEBHOOK_DEPTH_PENDING));
	metrics_printf(b, "callstop_webhook_queue_depth{state=\"failed\"} %s\n",
		       PQgetvalue(res, 0, WEBHOOK_DEPTH_FAILED));
	metrics_header(b, "callstop_webhook_oldest_undelivered_seconds", "gauge",
		       "Age of the oldest pending webhook delivery or announced cancel, 0 if none.");
	metrics_printf(b, "callstop_webhook_oldest_undelivered_seconds %s\n",
		       PQgetvalue(res, 0, WEBHOOK_DEPTH_OLDEST_S));
	PQclear(res);
}

static void metrics_process_manager(struct metrics_buf *b, long listen_queue)
{
	struct scoreboard_totals t;

	scoreboard_totals(&t);
	metrics_header(b, "callstop_accepted_connections_total", "counter",
		       "Connections accepted by workers.");
	metrics_printf(b, "callstop_accepted_connections_total %" PRIu64 "\n", t.accepted);
	metrics_header(b, "callstop_active_workers", "gauge", "Workers serving a request.");
	metrics_printf(b, "callstop_active_workers %d\n", t.active);
	metrics_header(b, "callstop_idle_workers", "gauge", "Workers waiting for a connection.");
	metrics_printf(b, "callstop_idle_workers %d\n", t.idle);
	metrics_header(b, "callstop_max_active_workers", "gauge", "Most workers busy at once since start.");
	metrics_printf(b, "callstop_max_active_workers %" PRIu64 "\n", t.max_active);
	metrics_header(b, "callstop_slow_requests_total", "counter", "Requests over slow_request_ms.");
	metrics_printf(b, "callstop_slow_requests_total %" PRIu64 "\n", t.slow_requests);
	metrics_header(b, "callstop_respawns_total", "counter",
		       "Workers started to replace one that exited.");
	metrics_printf(b, "callstop_respawns_total %" PRIu64 "\n", t.respawns);
	metrics_header(b, "callstop_db_connections_total", "counter",
		       "Database connections opened by workers (the first one and every reconnect).");
	metrics_printf(b, "callstop_db_connections_total %" PRIu64 "\n", t.db_connects);
	if (listen_queue >= 0) {
		metrics_header(b, "callstop_listen_queue", "gauge", "Connections waiting to be accepted.");
		metrics_printf(b, "callstop_listen_queue %ld\n", listen_queue);
	}
	metrics_header(b, "callstop_max_listen_queue", "gauge", "Deepest listen queue seen by the master.");
	metrics_printf(b, "callstop_max_listen_queue %" PRIu64 "\n", t.max_listen_queue);
	metrics_header(b, "callstop_start_time_seconds", "gauge",
		       "Start of the master, seconds since the epoch.");
	metrics_printf(b, "callstop_start_time_seconds %" PRId64 "\n", t.start_time);
}

char *metrics_render(struct db *db, long listen_queue)
{
	struct metrics_buf b = { malloc(8192), 0, 8192, 0 };

	if (b.s == NULL)
		return NULL;
	b.s[0] = '\0';
	metrics_health(&b, db);
	metrics_process_manager(&b, listen_queue);
	metrics_requests(&b);
	metrics_cancels(&b);
	metrics_verify(&b);
	metrics_outbox_depth(&b, db);
	metrics_webhooks(&b, db);
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
