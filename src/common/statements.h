/*
 * statements.h - every statement callstopd prepares: enum db_stmt names
 * them, the column enums name each one's result columns, and the table of
 * statements.c holds their SQL.  Included by db.h, whose db_exec() runs
 * them; only db.c reads the table.
 */
#ifndef CALLSTOP_STATEMENTS_H
#define CALLSTOP_STATEMENTS_H

/* The statements, by name; the comment of each says its parameters and
 * which column enum below names its result. */
enum db_stmt {
	DB_KEY_LOOKUP,              /* $1 key hash (hex) -> enum key_lookup_col */
	DB_ADMIN_LOOKUP,            /* $1 token hash (hex) -> enum key_lookup_col (tenant NULL, ids '') */
	DB_CURSOR_SECRET,           /* -> enum cursor_secret_col */
	DB_CANCEL,                  /* see callstop_cancel() in sql/006_contracts.sql; $2, $3, $9 text[]
				 * (db_text_array()) -> enum cancel_row_col, one row per ref */
	DB_CALL_STATUS,             /* $1 tenant, $2 call id -> enum call_status_col */
	DB_CALL_TARGETS,            /* $1 call uuid -> enum call_targets_col, by outbox id */
	DB_BATCH_STATUS,            /* $1 tenant, $2 job_id or uuid -> enum batch_status_col */
	DB_BATCH_HISTORY,           /* $1 batch uuid -> enum batch_history_col, oldest first */
	DB_BATCH_ENTRIES,           /* $1 batch uuid, $2 after id, $3 limit -> enum batch_entries_col */
	DB_BATCH_ENTRIES_BY_STATUS, /* $1 batch, $2 after id, $3 limit, $4 status, $5 second status or NULL
				 * -> enum batch_entries_col */
	DB_CALL_TENANT,             /* $1 call id -> enum call_tenant_col (any tenant: SPEC 4.1's 403) */
	DB_HEPPU_CALL,              /* $1 tenant, $2 call id -> enum heppu_call_col */
	DB_HEPPU_LIST,        /* $1 tenant, $2 start, $3 end, $4 limit, $5 offset -> enum heppu_call_col */
	DB_HEPPU_LIST_AGENT,  /* ... $6 agent_id */
	DB_HEPPU_LIST_STATUS, /* ... $6 Heppu status */
	DB_HEPPU_LIST_AGENT_STATUS, /* ... $6 agent_id, $7 Heppu status */
	DB_OUTBOX_DEPTH,            /* -> enum outbox_depth_col, one row: the rows not done (metrics) */
	/* The outbox's per-provider claims (issue 10, defects 1 and 6) */
	DB_OUTBOX_CLAIM_NEW, /* $1 ids (bigint[] literal), $2 lease s: those never tried -> enum outbox_claim_col */
	DB_OUTBOX_CLAIM_DUE_OF, /* $1 provider, $2 limit, $3 lease s: due rows, oldest due first
				 * -> enum outbox_claim_col */
	DB_OUTBOX_RESULT,       /* $1 JSON [{id, state, last_error, delay_ms}]; ends the rows' claims
			   * -> enum outbox_result_col, one row per row written */
	DB_OUTBOX_PULL_FORWARD, /* $1 provider -> enum outbox_pull_forward_col (sql/007_outbox.sql) */
	DB_OUTBOX_OF_PROVIDERS, /* $1 ids (bigint[] literal) -> enum outbox_of_providers_col, never tried */
	/* SPEC 8, sql/008_idempotency.sql: a keyed request's transaction (db.c
	 * neither retries nor reconnects inside it) and its key */
	DB_TX_BEGIN,    /* -> no rows */
	DB_TX_COMMIT,   /* -> no rows */
	DB_TX_ROLLBACK, /* -> no rows */
	DB_IDEM_CLAIM,  /* $1 scope, $2 key, $3 fingerprint, $4 wait ms -> enum idem_claim_col */
	DB_IDEM_STORE, /* $1 scope, $2 key, $3 fingerprint, $4 status, $5 body, $6 ttl s, $7 hold -> no rows */
	DB_IDEM_FINISH, /* $1 scope, $2 key, $3 status, $4 body; lets the key go -> no rows */
	DB_IDEM_PRUNE,  /* $1 limit -> enum idem_prune_col */
	/* Verified termination (SPEC 11, sql/009_verify.sql) */
	DB_VERIFY_CLAIM,  /* $1 limit, $2 lease s: due sent rows -> enum verify_claim_col */
	DB_VERIFY_RESULT, /* $1 JSON [{id, state, last_error, ago_ms}] -> enum outbox_result_col */
	/* Campaign control (SPEC 10, 12; sql/010_campaign.sql) */
	DB_BATCH_PAUSE,  /* $1 tenant, $2 job_id or uuid, $3 hangup, $4 route, $5 key id, $6 request id,
			  * $7 providers text[] -> enum pause_row_col, one row */
	DB_BATCH_RESUME, /* $1 tenant, $2 job_id or uuid, $3 route, $4 key id, $5 request id
			  * -> enum pause_row_col, one row */
	DB_SUPPRESS,     /* $1 tenant, $2 numbers text[], $3 reason, $4 hangup, $5 route, $6 key id,
			  * $7 request id, $8 providers text[] -> enum suppress_row_col, one row */
	DB_UNSUPPRESS, /* $1 tenant, $2 number, $3 route, $4 request id -> enum suppression_col (number only) */
	DB_SUPPRESSION_GET,  /* $1 tenant, $2 number -> enum suppression_col */
	DB_SUPPRESSION_LIST, /* $1 tenant, $2 after id, $3 limit -> enum suppression_col, by id */
	DB_CANCEL_MATCHING,  /* $1 tenant, $2 filter jsonb, $3 all_active, $4 include entries, $5 dry run,
			      * $6 max, $7 route, $8 key id, $9 request id, $10 providers text[]
			      * -> enum match_row_col, one row */
	/* GET /callstop-ready, /callstop-metrics (issue 16) */
	DB_SCHEMA_VERSION, /* -> enum schema_version_col, the newest applied migration (common/db_schema.h) */
	/* Webhooks (SPEC 9, sql/011_webhooks.sql) */
	DB_WEBHOOK_ANNOUNCE, /* $1 limit: announced cancels made events (sql/014) -> one row, the count */
	DB_WEBHOOK_CLAIM, /* $1 limit, $2 lease s: due deliveries, per-resource order kept -> enum webhook_claim_col */
	DB_WEBHOOK_RESULT, /* $1 JSON [{id, state, status, last_error, delay_ms}]; ends the claims -> no rows */
	DB_WEBHOOK_GONE,   /* $1 delivery id: 410, its endpoint disabled -> enum webhook_gone_col */
	DB_WEBHOOK_DEPTH, /* -> enum webhook_depth_col, one row (metrics) */
	DB_N_STMTS
};

/*
 * The result columns of each statement, by name: a reader of a PGresult
 * writes PQgetvalue(res, row, CALL_STATUS_ID), never a bare number.  The
 * order is the SELECT list's in statements.c; the *_NCOLS count is checked against
 * the prepared statement when a connection is made (db_connect() fails and
 * logs the statement if they differ), so an enum cannot silently drift from
 * its SQL.
 */
enum key_lookup_col {                       /* DB_KEY_LOOKUP, DB_ADMIN_LOOKUP */
		      KEY_LOOKUP_ID,        /* api_keys.id or admin_tokens.id */
		      KEY_LOOKUP_TENANT_ID, /* NULL for an admin token */
		      KEY_LOOKUP_FRONTEND_ID,
		      KEY_LOOKUP_WORKSPACE_ID,
		      KEY_LOOKUP_HASH, /* bytea, escaped: the stored SHA-256 */
		      KEY_LOOKUP_NCOLS
};

enum cursor_secret_col {                      /* DB_CURSOR_SECRET */
			 CURSOR_SECRET_VALUE, /* bytea, escaped */
			 CURSOR_SECRET_NCOLS
};

/* CANCEL_ROW_, not CANCEL_: cancel.h owns that prefix. */
enum cancel_row_col {                           /* DB_CANCEL, the fields of callstop_cancel() */
		      CANCEL_ROW_ORD,           /* 1-based position of the ref */
		      CANCEL_ROW_RESOURCE_TYPE, /* "call" | "batch" */
		      CANCEL_ROW_OUTCOME,       /* not_found | cancelled | terminal | already_cancelled */
		      CANCEL_ROW_STATUS,
		      CANCEL_ROW_CANCELLED_COUNT,
		      CANCEL_ROW_PENDING_CANCELLED,
		      CANCEL_ROW_ACTIVE_COUNT,
		      CANCEL_ROW_RESOURCE_UUID,
		      CANCEL_ROW_JOB_ID,
		      CANCEL_ROW_TENANT_ID,
		      CANCEL_ROW_LIVEKIT_ROOM,   /* NULL if the call had none */
		      CANCEL_ROW_OPENAI_CALL_ID, /* NULL if the call had none */
		      CANCEL_ROW_OUTBOX, /* JSON [{"id": n, "provider": "livekit"}, ...]: rows written */
		      CANCEL_ROW_NCOLS
};

enum call_status_col { /* DB_CALL_STATUS */
		       CALL_STATUS_ID,
		       CALL_STATUS_STATUS,
		       CALL_STATUS_BATCH_JOB_ID,
		       CALL_STATUS_AGENT_ID,
		       CALL_STATUS_TO_NUMBER,
		       CALL_STATUS_LIVEKIT_ROOM,
		       CALL_STATUS_OPENAI_CALL_ID,
		       CALL_STATUS_CREATED_AT, /* RFC 3339 (callstop_rfc3339) */
		       CALL_STATUS_STARTED_AT,
		       CALL_STATUS_ENDED_AT,
		       CALL_STATUS_END_REASON,
		       CALL_STATUS_NCOLS
};

enum call_targets_col { /* DB_CALL_TARGETS */
			CALL_TARGETS_PROVIDER,
			CALL_TARGETS_TARGET,
			CALL_TARGETS_STATE, /* pending | sent | done | failed | unknown */
			CALL_TARGETS_ATTEMPTS,
			CALL_TARGETS_LAST_ERROR,
			CALL_TARGETS_VERIFIED_AT,        /* RFC 3339, NULL until verified */
			CALL_TARGETS_SECONDS_TO_SILENCE, /* verified_at - created_at, s (3 decimals) */
			CALL_TARGETS_NCOLS
};

enum batch_status_col { /* DB_BATCH_STATUS */
			BATCH_STATUS_ID,
			BATCH_STATUS_JOB_ID,
			BATCH_STATUS_STATUS,
			BATCH_STATUS_CREATED_AT,
			BATCH_STATUS_CANCELLED_AT,
			BATCH_STATUS_TOTAL,
			BATCH_STATUS_PENDING, /* pending + claimed entries */
			BATCH_STATUS_RUNNING,
			BATCH_STATUS_COMPLETED,
			BATCH_STATUS_FAILED,
			BATCH_STATUS_CANCELLED,
			BATCH_STATUS_NCOLS
};

enum batch_history_col { /* DB_BATCH_HISTORY */
			 BATCH_HISTORY_AT,
			 BATCH_HISTORY_ACTION,
			 BATCH_HISTORY_FORCE, /* "t" | "f" */
			 BATCH_HISTORY_CANCELLED_COUNT,
			 BATCH_HISTORY_ROUTE,
			 BATCH_HISTORY_KEY_ID,
			 BATCH_HISTORY_REQUEST_ID,
			 BATCH_HISTORY_NCOLS
};

enum batch_entries_col { /* DB_BATCH_ENTRIES, DB_BATCH_ENTRIES_BY_STATUS */
			 BATCH_ENTRIES_ID,
			 BATCH_ENTRIES_STATUS,
			 BATCH_ENTRIES_CALL_LOG_ID,
			 BATCH_ENTRIES_TO_NUMBER,
			 BATCH_ENTRIES_UPDATED_AT,
			 BATCH_ENTRIES_NCOLS
};

enum call_tenant_col { /* DB_CALL_TENANT */
		       CALL_TENANT_TENANT_ID,
		       CALL_TENANT_NCOLS
};

enum heppu_call_col { /* DB_HEPPU_CALL, DB_HEPPU_LIST* (SPEC 4.1's field order) */
		      HEPPU_CALL_ID,
		      HEPPU_CALL_STATUS, /* the Heppu name (heppu_status) */
		      HEPPU_CALL_AGENT_ID,
		      HEPPU_CALL_TO_NUMBER,
		      HEPPU_CALL_BATCH_ID, /* the batch's job_id */
		      HEPPU_CALL_CREATED_AT,
		      HEPPU_CALL_STARTED_AT,
		      HEPPU_CALL_ENDED_AT,
		      HEPPU_CALL_END_REASON,
		      HEPPU_CALL_NCOLS
};

enum outbox_claim_col { /* DB_OUTBOX_CLAIM_NEW, DB_OUTBOX_CLAIM_DUE_OF */
			OUTBOX_CLAIM_ID,
			OUTBOX_CLAIM_TARGET,
			OUTBOX_CLAIM_IDEMPOTENCY_KEY,
			OUTBOX_CLAIM_ATTEMPTS, /* including this claim */
			OUTBOX_CLAIM_AGE_S,    /* whole seconds since the row was written */
			OUTBOX_CLAIM_PROVIDER,
			OUTBOX_CLAIM_NCOLS
};

enum outbox_pull_forward_col {                            /* DB_OUTBOX_PULL_FORWARD */
			       OUTBOX_PULL_FORWARD_COUNT, /* rows made due now */
			       OUTBOX_PULL_FORWARD_NCOLS
};

enum outbox_of_providers_col { /* DB_OUTBOX_OF_PROVIDERS */
			       OUTBOX_OF_PROVIDERS_ID,
			       OUTBOX_OF_PROVIDERS_PROVIDER,
			       OUTBOX_OF_PROVIDERS_NCOLS
};

enum outbox_result_col { /* DB_OUTBOX_RESULT, DB_VERIFY_RESULT */
			 OUTBOX_RESULT_COL_PROVIDER,
			 OUTBOX_RESULT_COL_STATE,   /* as written */
			 OUTBOX_RESULT_COL_SILENCE, /* s from the cancel to verified_at; NULL if not done */
			 OUTBOX_RESULT_COL_NCOLS
};

enum verify_claim_col { /* DB_VERIFY_CLAIM */
			VERIFY_CLAIM_ID,
			VERIFY_CLAIM_CALL_ID,
			VERIFY_CLAIM_PROVIDER,
			VERIFY_CLAIM_TARGET,
			VERIFY_CLAIM_SENT_AGO_MS, /* since the provider accepted the request */
			VERIFY_CLAIM_NCOLS
};

enum outbox_depth_col { /* DB_OUTBOX_DEPTH */
			OUTBOX_DEPTH_PENDING,
			OUTBOX_DEPTH_OLDEST_S, /* age of the oldest pending row, s (0 if none) */
			OUTBOX_DEPTH_FAILED,   /* dead-lettered */
			OUTBOX_DEPTH_NCOLS
};

enum idem_claim_col {                     /* DB_IDEM_CLAIM */
		      IDEM_CLAIM_VERDICT, /* "run" | "replay" | "reused" | "in_flight" */
		      IDEM_CLAIM_STATUS,  /* replay: the stored HTTP status */
		      IDEM_CLAIM_BODY,    /* replay: the stored body */
		      IDEM_CLAIM_NCOLS
};

enum idem_prune_col {                   /* DB_IDEM_PRUNE */
		      IDEM_PRUNE_COUNT, /* keys deleted */
		      IDEM_PRUNE_NCOLS
};

enum pause_row_col {                    /* DB_BATCH_PAUSE, DB_BATCH_RESUME */
		     PAUSE_ROW_OUTCOME, /* not_found terminal paused already_paused resumed not_paused */
		     PAUSE_ROW_BATCH_ID,
		     PAUSE_ROW_JOB_ID,
		     PAUSE_ROW_STATUS, /* after the request */
		     PAUSE_ROW_RELEASED,
		     PAUSE_ROW_TERMINATED,
		     PAUSE_ROW_ACTIVE, /* active calls before the request */
		     PAUSE_ROW_OUTBOX, /* JSON [{"id": n, "provider": "livekit"}, ...]: rows written */
		     PAUSE_ROW_NCOLS
};

enum suppress_row_col { /* DB_SUPPRESS */
			SUPPRESS_ROW_ADDED,
			SUPPRESS_ROW_ALREADY,
			SUPPRESS_ROW_ENTRIES_CANCELLED,
			SUPPRESS_ROW_CALLS_CANCELLED,
			SUPPRESS_ROW_OUTBOX, /* as PAUSE_ROW_OUTBOX */
			SUPPRESS_ROW_NCOLS
};

enum suppression_col { /* DB_SUPPRESSION_GET, DB_SUPPRESSION_LIST; DB_UNSUPPRESS has the first only */
		       SUPPRESSION_NUMBER,
		       SUPPRESSION_REASON, /* NULL if none */
		       SUPPRESSION_CREATED_AT,
		       SUPPRESSION_ID, /* the keyset of the list */
		       SUPPRESSION_NCOLS
};

enum match_row_col {                    /* DB_CANCEL_MATCHING */
		     MATCH_ROW_OUTCOME, /* ok | too_many */
		     MATCH_ROW_CALLS_MATCHED,
		     MATCH_ROW_ENTRIES_MATCHED,
		     MATCH_ROW_CANCELLED,
		     MATCH_ROW_CALLS,  /* JSON: the first 100 calls, see callstop_cancel_matching() */
		     MATCH_ROW_OUTBOX, /* as PAUSE_ROW_OUTBOX */
		     MATCH_ROW_NCOLS
};

enum schema_version_col {                         /* DB_SCHEMA_VERSION */
			  SCHEMA_VERSION_VERSION, /* 0: none applied */
			  SCHEMA_VERSION_NCOLS
};

enum webhook_claim_col { /* DB_WEBHOOK_CLAIM */
			 WEBHOOK_CLAIM_ID,
			 WEBHOOK_CLAIM_ENDPOINT_ID,
			 WEBHOOK_CLAIM_UID, /* the webhook-id: the event's, the same on every attempt */
			 WEBHOOK_CLAIM_BODY,
			 WEBHOOK_CLAIM_URL,
			 WEBHOOK_CLAIM_SECRET,          /* "whsec_...": never logged */
			 WEBHOOK_CLAIM_PREVIOUS_SECRET, /* NULL unless a rotation's overlap is on */
			 WEBHOOK_CLAIM_ATTEMPTS,        /* including this claim */
			 WEBHOOK_CLAIM_AGE_S,           /* whole seconds since queued (or replayed) */
			 WEBHOOK_CLAIM_NCOLS
};

enum webhook_gone_col {                        /* DB_WEBHOOK_GONE */
			WEBHOOK_GONE_ENDPOINT, /* the endpoint disabled */
			WEBHOOK_GONE_NCOLS
};

enum webhook_depth_col {                         /* DB_WEBHOOK_DEPTH */
			 WEBHOOK_DEPTH_EVENTS,   /* events written since the migration */
			 WEBHOOK_DEPTH_PENDING,  /* deliveries not delivered nor failed, and announced
						  * cancels not yet made events (sql/014) */
			 WEBHOOK_DEPTH_OLDEST_S, /* age of the oldest of them, s (0 if none) */
			 WEBHOOK_DEPTH_FAILED,   /* deliveries given up */
			 WEBHOOK_DEPTH_NCOLS
};

struct db_statement {
	const char *name;
	int ncols; /* the *_NCOLS of its column enum in db.h (0: no rows) */
	const char *sql;
};

/* Prepared on every connection (db.c), each checked against its ncols. */
extern const struct db_statement db_statements[DB_N_STMTS];

#endif
