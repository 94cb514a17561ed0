/*
 * stmt.c - see stmt.h.
 */
#include "config.h"

#include "ctl/stmt.h"

/* Times in listings: RFC 3339 UTC, like the API. */
#define CTL_RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Who the demo's batch calls are made by (sql/002_dialer.sql). */
#define CTL_DEMO_DIALER "demo-dialer"
#define CTL_DEMO_AGENT "agent-demo-1"

/* Every statement callstopctl runs, in one place (STYLE.md 3); the
 * parameters and columns of each are in stmt.h. */
static const char *const ctl_stmts[CTL_N_STMTS] = {
	[CTL_BEGIN] = "BEGIN",
	[CTL_COMMIT] = "COMMIT",
	[CTL_ROLLBACK] = "ROLLBACK",

	[CTL_MIGRATE_LOCK] = "SELECT pg_advisory_xact_lock($1::bigint)",
	[CTL_MIGRATIONS_CREATE] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
				  " version integer PRIMARY KEY,"
				  " name text NOT NULL,"
				  " applied_at timestamptz NOT NULL DEFAULT now())",
	[CTL_MIGRATION_STATE] = "SELECT count(*) FILTER (WHERE version = $1::integer) AS applied,"
				" coalesce(max(version), 0) AS newest"
				" FROM schema_migrations",
	[CTL_MIGRATION_RECORD] = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
	[CTL_SCHEMA_MIGRATED] = "SELECT to_regclass('schema_migrations') IS NOT NULL AS migrated",
	[CTL_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) AS version FROM schema_migrations",
	[CTL_SCHEMA_APPLIED] = "SELECT version FROM schema_migrations",

	[CTL_TENANT_ADD] = "INSERT INTO tenants (name, workspace_id) VALUES ($1, $2) RETURNING id",
	[CTL_TENANT_ENSURE] = "INSERT INTO tenants (name, workspace_id) VALUES ($1, $2)"
			      " ON CONFLICT (name) DO NOTHING RETURNING id",
	[CTL_TENANT_ID] = "SELECT id FROM tenants WHERE name = $1",
	[CTL_TENANT_LIST] =
		"SELECT t.id, t.name, t.workspace_id,"
		" (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS keys,"
		" " CTL_RFC3339("t.created_at") " AS created_at"
						" FROM tenants t ORDER BY t.id",

	[CTL_KEY_INSERT] = "INSERT INTO api_keys (tenant_id, key_hash, key_prefix, frontend_id)"
			   " SELECT t.id, $2, $3, $4 FROM tenants t WHERE t.name = $1 RETURNING id",
	[CTL_KEY_REVOKE] =
		"UPDATE api_keys k SET revoked_at = now() FROM tenants t"
		" WHERE k.id = $1 AND k.revoked_at IS NULL AND t.id = k.tenant_id"
		" RETURNING format('of tenant %s (frontend %s)', t.name, k.frontend_id) AS description",
	[CTL_KEY_REVOKED_AT] =
		"SELECT " CTL_RFC3339("revoked_at") " AS revoked_at FROM api_keys WHERE id = $1",
	[CTL_KEY_LIST] =
		"SELECT k.id, t.name AS tenant, k.key_prefix AS prefix, k.frontend_id,"
		" " CTL_RFC3339(
			"k.created_at") " AS created_at,"
					" " CTL_RFC3339(
						"k.revoked_at") " AS revoked_at"
								" FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
								" WHERE $1::bigint IS NULL OR k.tenant_id = $1::bigint"
								" ORDER BY k.id",
	[CTL_ADMIN_INSERT] =
		"INSERT INTO admin_tokens (name, token_hash, token_prefix) VALUES ($1, $2, $3) RETURNING id",
	[CTL_ADMIN_REVOKE] = "UPDATE admin_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
			     " RETURNING format('(%s)', name) AS description",
	[CTL_ADMIN_REVOKED_AT] =
		"SELECT " CTL_RFC3339("revoked_at") " AS revoked_at FROM admin_tokens WHERE id = $1",
	[CTL_ADMIN_LIST] =
		"SELECT id, name, token_prefix AS prefix,"
		" " CTL_RFC3339("created_at") " AS created_at,"
					      " " CTL_RFC3339("revoked_at") " AS revoked_at"
									    " FROM admin_tokens ORDER BY id",

	/* last_error on one line: it carries a response body. */
	[CTL_OUTBOX_LIST] =
		"SELECT o.id, t.name AS tenant, o.call_id, o.provider, o.target, o.state, o.attempts,"
		" " CTL_RFC3339(
			"o.next_attempt_at") " AS next_attempt_at,"
					     " regexp_replace(o.last_error, '[[:cntrl:]]+', ' ', 'g') AS last_error"
					     " FROM termination_outbox o JOIN tenants t ON t.id = o.tenant_id"
					     " WHERE $1::text IS NULL OR o.state = $1::text"
					     " ORDER BY o.id DESC LIMIT $2::bigint",
	[CTL_OUTBOX_STATE] = "SELECT state FROM termination_outbox WHERE id = $1::bigint",
	/* The Idempotency-Key stays: a hangup that did get through is not
	 * repeated. */
	[CTL_OUTBOX_REQUEUE] =
		"UPDATE termination_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
		" last_error = NULL, updated_at = now()"
		" WHERE state = 'failed' AND ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))"
		" RETURNING id",
	/* The NOTIFY trigger fires on insert only. */
	[CTL_OUTBOX_NOTIFY] = "SELECT pg_notify('callstop_outbox', 'retry')",

	[CTL_DEMO_CALL_INSERT] =
		"INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, livekit_room,"
		" openai_call_id, created_at, started_at, ended_at, end_reason)"
		" SELECT $1, $2, $3, $4::text, $5, $6, t,"
		"  CASE WHEN $7::boolean THEN t + interval '5 seconds' END,"
		"  CASE WHEN $8::boolean THEN t + interval '50 seconds' END,"
		"  CASE WHEN $8::boolean THEN $4::text END"
		" FROM (SELECT now() - make_interval(mins => $9::integer) AS t) AS c"
		" RETURNING id",
	[CTL_DEMO_BATCH_INSERT] =
		"INSERT INTO voice_call_batches (tenant_id, job_id) VALUES ($1, $2) RETURNING id",
	/* Set-based: one statement, one round trip, and one counter update by
	 * the statement trigger. */
	[CTL_DEMO_ENTRIES_INSERT] = "INSERT INTO voice_call_batch_entries (batch_id, to_number)"
				    " SELECT $1, '+1555' || lpad(g::text, greatest(7, length(g::text)), '0')"
				    " FROM generate_series($2::integer, $3::integer) AS g",
	[CTL_DEMO_CLAIM] =
		"SELECT entry_id FROM callstop_claim_entries($1, '" CTL_DEMO_DIALER "', $2::integer)",
	[CTL_DEMO_START] = "SELECT callstop_start_call($1, '" CTL_DEMO_DIALER "', '" CTL_DEMO_AGENT
			   "', $2, $3) AS call_id",
	[CTL_DEMO_REPORT] = "SELECT callstop_report_call($1, $2) AS status",
	[CTL_DEMO_BATCH_SHOW] =
		"SELECT job_id, id, total_count, status FROM voice_call_batches WHERE id = $1",

	/* Suppression (SPEC 12): the same function as POST /suppressions, with
	 * no hangup (callstopctl sends no termination itself) */
	[CTL_SUPPRESS] =
		"SELECT added, already_suppressed, entries_cancelled"
		" FROM callstop_suppress($1::bigint, $2::text[], $3, false, 'callstopctl', NULL, NULL, '{}')",
	[CTL_UNSUPPRESS] = "SELECT number FROM callstop_unsuppress($1::bigint, $2, 'callstopctl', NULL)",
	[CTL_SUPPRESSION_LIST] = "SELECT number, reason, " CTL_RFC3339(
		"created_at") " AS created_at"
			      " FROM suppressions WHERE tenant_id = $1::bigint ORDER BY tenant_id, id"
			      " LIMIT $2::bigint",
	/* clang-format off */
	[CTL_WEBHOOK_ADD] =
		"INSERT INTO webhook_endpoints (tenant_id, url, event_types, secret)"
		" SELECT t.id, $2, $3::text[], $4 FROM tenants t WHERE t.name = $1 RETURNING id",
	[CTL_WEBHOOK_LIST] =
		"SELECT e.id, t.name AS tenant, e.url, coalesce(array_to_string(e.event_types, ','), '*') AS events,"
		" e.state || coalesce(' (' || e.state_reason || ')', '') AS state,"
		" CASE WHEN e.previous_secret_until > now() THEN " CTL_RFC3339("e.previous_secret_until") " END"
		"  AS overlap_until,"
		" " CTL_RFC3339("e.created_at") " AS created_at"
		" FROM webhook_endpoints e JOIN tenants t ON t.id = e.tenant_id ORDER BY e.id",
	/* removed, not deleted: its deliveries keep their endpoint */
	[CTL_WEBHOOK_REMOVE] =
		"WITH e AS (UPDATE webhook_endpoints SET state = 'removed', state_reason = NULL, updated_at = now()"
		"  WHERE id = $1::bigint AND state <> 'removed' RETURNING id),"
		" d AS (UPDATE webhook_deliveries SET state = 'failed', last_error = 'endpoint removed',"
		"  claimed_until = NULL, updated_at = now()"
		"  WHERE endpoint_id IN (SELECT id FROM e) AND state = 'pending' RETURNING id)"
		" SELECT id, (SELECT count(*) FROM d) AS failed FROM e",
	[CTL_WEBHOOK_ROTATE] =
		"UPDATE webhook_endpoints SET previous_secret = secret, secret = $2,"
		" previous_secret_until = now() + make_interval(secs => $3::bigint), updated_at = now()"
		" WHERE id = $1::bigint AND state <> 'removed'"
		" RETURNING id, " CTL_RFC3339("previous_secret_until") " AS overlap_until",
	[CTL_WEBHOOK_TEST] = "SELECT callstop_webhook_test($1::bigint) AS event",
	[CTL_WEBHOOK_DELIVERIES] =
		"SELECT d.id, d.endpoint_id AS endpoint, ev.uid AS event, ev.type,"
		" d.resource_type || ':' || d.resource_id AS resource, d.seq, d.state, d.attempts, d.last_status,"
		" " CTL_RFC3339("d.next_attempt_at") " AS next_attempt_at,"
		" regexp_replace(d.last_error, '[[:cntrl:]]+', ' ', 'g') AS last_error"
		" FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id"
		" WHERE ($1::bigint IS NULL OR d.endpoint_id = $1::bigint) AND ($2::text IS NULL OR d.state = $2::text)"
		" ORDER BY d.id DESC LIMIT $3::bigint",
	/* the same event row, so the same webhook-id and body; its age
	 * (webhook.max_age) starts again */
	[CTL_WEBHOOK_REPLAY] =
		"UPDATE webhook_deliveries d SET state = 'pending', attempts = 0, next_attempt_at = now(),"
		" queued_at = now(), claimed_until = NULL, last_error = NULL, delivered_at = NULL, updated_at = now()"
		" FROM webhook_events ev, webhook_endpoints p"
		" WHERE ev.id = d.event_id AND p.id = d.endpoint_id AND p.state = 'enabled'"
		"  AND (ev.uid = $1 OR ev.id::text = $1) AND (d.state <> 'pending' OR d.claimed_until IS NULL OR d.claimed_until <= now())"
		" RETURNING d.id",
	[CTL_WEBHOOK_NOTIFY] = "SELECT pg_notify('callstop_webhook', 'replay')",
	/* clang-format on */
};

PGresult *ctl_stmt_run(PGconn *conn, enum ctl_stmt stmt, int nparams, const char *const *params,
		       const int *lengths, const int *formats)
{
	return PQexecParams(conn, ctl_stmts[stmt], nparams, NULL, params, lengths, formats, 0);
}
