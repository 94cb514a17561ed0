/*
 * stmt.h - every SQL statement callstopctl runs, by name.
 *
 * The SQL lives in one table in stmt.c, the way callstopd's lives in
 * src/common/db.c; a command names a statement and never spells SQL.  Each
 * entry below says its parameters ($n, text unless noted) and the columns it
 * returns; callers read those columns by name (ctl_value(), ctl_column() in
 * ctl.h), never by position.  A listing statement's column names are also the
 * header of the table it prints (callstopctl(8)), so renaming one changes the
 * output.
 *
 * Statements are not prepared: callstopctl runs each one once or a few times
 * per process, so a PREPARE would only add round trips.
 *
 * The migration files themselves are the one SQL that does not come from here
 * (ctl/migrate.c runs each file with PQexec, as it is).
 */
#ifndef CALLSTOP_CTL_STMT_H
#define CALLSTOP_CTL_STMT_H

#include <libpq-fe.h>

enum ctl_stmt {
	/* Transactions; no parameters, no columns. */
	CTL_BEGIN,
	CTL_COMMIT,
	CTL_ROLLBACK,

	/* Migrations (ctl/migrate.c, ctl/check.c). */
	CTL_MIGRATE_LOCK,      /* $1 advisory lock key (bigint) -> (nothing read) */
	CTL_MIGRATIONS_CREATE, /* create schema_migrations if missing */
	CTL_MIGRATION_STATE,   /* $1 version -> applied (0/1), newest (0: none) */
	CTL_MIGRATION_RECORD,  /* $1 version, $2 file name */
	CTL_SCHEMA_MIGRATED,   /* -> migrated ("t" if schema_migrations exists) */
	CTL_SCHEMA_VERSION,    /* -> version (newest applied, 0: none) */
	CTL_SCHEMA_APPLIED,    /* -> version, one row per applied migration */

	/* Tenants (ctl/tenant.c). */
	CTL_TENANT_ADD,    /* $1 name, $2 workspace id -> id; 23505 on a taken name or workspace id */
	CTL_TENANT_ENSURE, /* $1 name, $2 workspace id -> id, no row if the name exists */
	CTL_TENANT_ID,     /* $1 name -> id, no row if there is none */
	CTL_TENANT_LIST,   /* listing: id, name, workspace_id, keys, created_at */

	/* API keys and admin tokens (ctl/key.c). */
	CTL_KEY_INSERT,       /* $1 tenant name, $2 SHA-256 (bytea), $3 prefix, $4 frontend id -> id,
				    * no row if there is no such tenant */
	CTL_KEY_REVOKE,       /* $1 id -> description ("of tenant acme (frontend fe-1)"),
				    * no row unless it was revoked now */
	CTL_KEY_REVOKED_AT,   /* $1 id -> revoked_at (RFC 3339), no row if there is no such id */
	CTL_KEY_LIST,         /* $1 tenant id or NULL (all) -> listing: id, tenant, prefix, frontend_id,
				    * created_at, revoked_at */
	CTL_ADMIN_INSERT,     /* $1 name, $2 SHA-256 (bytea), $3 prefix -> id */
	CTL_ADMIN_REVOKE,     /* $1 id -> description ("(ops)"), no row unless it was revoked now */
	CTL_ADMIN_REVOKED_AT, /* $1 id -> revoked_at (RFC 3339), no row if there is no such id */
	CTL_ADMIN_LIST,       /* listing: id, name, prefix, created_at, revoked_at */

	/* Termination outbox (ctl/outbox.c). */
	CTL_OUTBOX_LIST,    /* $1 state or NULL (all), $2 limit -> listing: id, tenant, call_id, provider,
				    * target, state, attempts, next_attempt_at, last_error; newest first */
	CTL_OUTBOX_STATE,   /* $1 id -> state, no row if there is no such id */
	CTL_OUTBOX_REQUEUE, /* $1 ids as a bigint[] literal, or NULL (all failed) -> id, one row per
				    * re-queued row */
	CTL_OUTBOX_NOTIFY,  /* wake the retry children (sql/003_cancel.sql's channel) */

	/* Demo data (ctl/demo.c). */
	CTL_DEMO_CALL_INSERT,    /* $1 tenant id, $2 agent, $3 number, $4 status, $5 room, $6 OpenAI call id,
				    * $7 answered (bool), $8 ended (bool), $9 minutes ago -> id */
	CTL_DEMO_BATCH_INSERT,   /* $1 tenant id, $2 job_id -> id */
	CTL_DEMO_ENTRIES_INSERT, /* $1 batch id, $2 first, $3 last number of a series of pending entries */
	CTL_DEMO_CLAIM,          /* $1 batch id, $2 limit -> entry_id (sql/002_dialer.sql) */
	CTL_DEMO_START,      /* $1 entry id, $2 room, $3 OpenAI call id or NULL -> call_id, NULL if refused */
	CTL_DEMO_REPORT,     /* $1 call id, $2 status -> status as accepted, or NULL */
	CTL_DEMO_BATCH_SHOW, /* $1 batch id -> job_id, id, total_count, status */

	/* Suppression (ctl/suppression.c, sql/010_campaign.sql). */
	CTL_SUPPRESS,   /* $1 tenant id, $2 numbers text[], $3 reason or NULL -> added, already_suppressed,
				    * entries_cancelled */
	CTL_UNSUPPRESS, /* $1 tenant id, $2 number -> number, no row if it was not on the list */
	CTL_SUPPRESSION_LIST, /* $1 tenant id, $2 limit -> listing: number, reason, created_at; oldest first */
	/* Webhook endpoints and deliveries (ctl/webhook.c, SPEC 9). */
	CTL_WEBHOOK_ADD,        /* $1 tenant name, $2 url, $3 event types (text[] literal) or NULL (all),
				    * $4 secret -> id, no row if there is no such tenant */
	CTL_WEBHOOK_LIST,       /* listing: id, tenant, url, events, state, overlap_until, created_at */
	CTL_WEBHOOK_REMOVE,     /* $1 id -> id, failed (its pending deliveries, now failed); no row unless
				    * it was removed now */
	CTL_WEBHOOK_ROTATE,     /* $1 id, $2 new secret, $3 overlap s -> id, overlap_until; no row if
				    * there is no such endpoint (or it was removed) */
	CTL_WEBHOOK_TEST,       /* $1 id -> event (its webhook-id), NULL if no such enabled endpoint */
	CTL_WEBHOOK_DELIVERIES, /* $1 endpoint id or NULL, $2 state or NULL, $3 limit -> listing: id,
				    * endpoint, event, type, resource, seq, state, attempts, last_status,
				    * next_attempt_at, last_error; newest first */
	CTL_WEBHOOK_REPLAY,     /* $1 event uid ("evt_...") or id -> id, one row per delivery re-queued */
	CTL_WEBHOOK_NOTIFY,     /* wake the delivery children (sql/011_webhooks.sql's channel) */

	CTL_N_STMTS
};

/*
 * Run stmt with nparams parameters (NULL entries are SQL NULLs; lengths and
 * formats as PQexecParams(), NULL for all-text) and text results.  Returns
 * what PQexecParams() returns (possibly NULL), unchecked: ctl_exec() in ctl.h
 * is the checked, reporting form.
 */
PGresult *ctl_stmt_run(PGconn *conn, enum ctl_stmt stmt, int nparams, const char *const *params,
		       const int *lengths, const int *formats);

#endif
