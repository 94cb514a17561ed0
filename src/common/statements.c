/*
 * statements.c - the SQL of callstopd (see statements.h).  The functions it
 * calls live in sql/; t/84-list-index.t and t/bench/floor.c read or copy
 * some of these statements, so keep them in step.
 */
#include "common/statements.h"

#include "common/db_schema.h"

/* clang-format off: the SQL is laid out to be read as SQL */
/* A call in the fields of SPEC 4.1 (heppu_status is the mapped name).  The
 * job_id is a scalar subquery, not a join, so that a list reads its index in
 * order and stops after the page instead of sorting every match. */
#define DB_HEPPU_SELECT \
	"SELECT c.id, c.heppu_status, c.agent_id, c.to_number," \
	" (SELECT b.job_id FROM voice_call_batches b WHERE b.id = c.batch_id)," \
	" callstop_rfc3339(c.created_at), callstop_rfc3339(c.started_at), callstop_rfc3339(c.ended_at)," \
	" c.end_reason" \
	" FROM voice_call_logs c"

/* GET /api/v1/calls, newest first, with a filter clause. */
#define DB_HEPPU_LIST_SQL(filter) \
	DB_HEPPU_SELECT \
	" WHERE c.tenant_id = $1::bigint AND c.created_at >= $2::timestamptz AND c.created_at < $3::timestamptz" filter \
	" ORDER BY c.created_at DESC, c.id DESC LIMIT $4::integer OFFSET $5::integer"

/* An outbox or verifier claim or result commits without waiting for its WAL
 * flush (issue 11 item 3): losing one in a database crash only means the
 * target is sent or read back once more (the same Idempotency-Key; a room
 * already gone is not_found, which counts as done).  The setting is local to the statement's
 * own implicit transaction: these statements never run inside BEGIN (the
 * cancel has committed before outbox_send()).  MATERIALIZED, so that it is
 * evaluated once and never folded away. */
#define OUTBOX_ASYNC "WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) "

/* Every statement callstopd runs, in one place (STYLE.md 3).  Times are
 * formatted by callstop_rfc3339() (sql/004_api.sql). */
const struct db_statement db_statements[DB_N_STMTS] = {
	[DB_KEY_LOOKUP] = { "key_lookup", KEY_LOOKUP_NCOLS,
			    "SELECT k.id, k.tenant_id, k.frontend_id, t.workspace_id, k.key_hash"
			    " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
			    " WHERE k.key_hash = decode($1, 'hex') AND k.revoked_at IS NULL" },
	[DB_ADMIN_LOOKUP] = { "admin_lookup", KEY_LOOKUP_NCOLS,
			      "SELECT id, NULL, '', '', token_hash FROM admin_tokens"
			      " WHERE token_hash = decode($1, 'hex') AND revoked_at IS NULL" },
	[DB_CURSOR_SECRET] = { "cursor_secret", CURSOR_SECRET_NCOLS,
			       "SELECT value FROM callstop_secrets WHERE name = 'cursor_hmac_key'" },
	/* ids travel as text[] (db_text_array()); the (outbox id, provider)
	 * pairs of each row come back as one JSON array */
	[DB_CANCEL] = { "cancel", CANCEL_ROW_NCOLS,
			"SELECT ord, resource_type, outcome, status, cancelled_count, pending_cancelled, active_count,"
			" resource_uuid, job_id, tenant_id, livekit_room, openai_call_id, array_to_json(outbox_rows)"
			" FROM callstop_cancel($1::bigint, $2::text[], $3::text[], $4::boolean, $5, $6::bigint, $7, $8,"
			"  $9::text[])"
			" ORDER BY ord" },
	[DB_CALL_STATUS] = { "call_status", CALL_STATUS_NCOLS,
			     "SELECT c.id, c.status, b.job_id, c.agent_id, c.to_number, c.livekit_room, c.openai_call_id,"
			     " callstop_rfc3339(c.created_at), callstop_rfc3339(c.started_at), callstop_rfc3339(c.ended_at),"
			     " c.end_reason"
			     " FROM voice_call_logs c LEFT JOIN voice_call_batches b ON b.id = c.batch_id"
			     " WHERE c.tenant_id = $1::bigint AND c.id = callstop_uuid_or_null($2)" },
	[DB_CALL_TARGETS] = { "call_targets", CALL_TARGETS_NCOLS,
			      "SELECT provider, target, state, attempts, last_error, callstop_rfc3339(verified_at),"
			      " round(extract(epoch FROM verified_at - created_at)::numeric, 3)"
			      " FROM termination_outbox WHERE call_id = $1::uuid ORDER BY id" },
	[DB_BATCH_STATUS] = { "batch_status", BATCH_STATUS_NCOLS,
			      "SELECT id, job_id, status, callstop_rfc3339(created_at), callstop_rfc3339(cancelled_at),"
			      " total_count, pending_count + claimed_count, running_count, completed_count, failed_count,"
			      " cancelled_count"
			      " FROM voice_call_batches"
			      " WHERE tenant_id = $1::bigint AND (job_id = $2 OR id = callstop_uuid_or_null($2))" },
	[DB_BATCH_HISTORY] = { "batch_history", BATCH_HISTORY_NCOLS,
			       "SELECT callstop_rfc3339(at), action, force, cancelled_count, route, key_id, request_id"
			       " FROM cancel_history WHERE batch_id = $1::uuid ORDER BY at, id LIMIT 100" },
	/* Keyset pages of one batch (SPEC 3.2), each served by its batch index
	 * (sql/001_schema.sql) whatever the planner's statistics say.  Not
	 * "batch_id = $1": that equality makes batch_id a constant, the primary
	 * key's id order then serves "ORDER BY id", and with a big batch known
	 * to the statistics the planner walked the key, discarding the other
	 * batches' rows (issue 11: 4.4 s for the first page of 1 M among 5.4 M).
	 * "= ANY (ARRAY[$1])" is the same test to the btree (an equality key on
	 * the index's first column, so the page starts at the cursor and ends
	 * at the batch's or status's last entry) but no equivalence class for
	 * the planner: the ORDER BY keeps batch_id, and only the batch index
	 * gives that order without sorting the whole batch.  Its estimate is
	 * still the equality's, so a batch the statistics do not know yet is not
	 * taken for an empty one.  (PostgreSQL 15 keeps a one-element ANY as
	 * it is; t/85-batch-pages.t checks the plans.)  What remains: a status
	 * page of a batch the statistics call nearly empty may be planned as a
	 * scan of the other batch index or a sort, the costs tying there (t/85
	 * reports it as a TODO).  A NULL $5 matches nothing. */
	[DB_BATCH_ENTRIES] = { "batch_entries", BATCH_ENTRIES_NCOLS,
			       "SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
			       " FROM voice_call_batch_entries WHERE batch_id = ANY (ARRAY[$1::uuid]) AND id > $2::bigint"
			       " ORDER BY batch_id, id LIMIT $3::integer" },
	/* Two ordered index scans merged, so that a page costs the same for
	 * any batch size even when "pending" also means "claimed". */
	[DB_BATCH_ENTRIES_BY_STATUS] = { "batch_entries_by_status", BATCH_ENTRIES_NCOLS,
					 "SELECT * FROM ("
					 " (SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
					 "  FROM voice_call_batch_entries"
					 "  WHERE batch_id = ANY (ARRAY[$1::uuid]) AND status = $4::text AND id > $2::bigint"
					 "  ORDER BY batch_id, status, id LIMIT $3::integer)"
					 " UNION ALL"
					 " (SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
					 "  FROM voice_call_batch_entries"
					 "  WHERE batch_id = ANY (ARRAY[$1::uuid]) AND status = $5::text AND id > $2::bigint"
					 "  ORDER BY batch_id, status, id LIMIT $3::integer)"
					 ") e ORDER BY id LIMIT $3::integer" },
	[DB_CALL_TENANT] = { "call_tenant", CALL_TENANT_NCOLS,
			     "SELECT tenant_id FROM voice_call_logs WHERE id = callstop_uuid_or_null($1)" },
	/* SPEC 4.1, in Heppu's field order; heppu_status is the mapped name. */
	[DB_HEPPU_CALL] = { "heppu_call", HEPPU_CALL_NCOLS,
			    DB_HEPPU_SELECT
			    " WHERE c.tenant_id = $1::bigint AND c.id = callstop_uuid_or_null($2)" },
	/* One statement per filter combination, so that each is served by its
	 * own index of sql/005_aliases.sql (a generic "$x IS NULL OR" plan
	 * could use none of them). */
	[DB_HEPPU_LIST] = { "heppu_list", HEPPU_CALL_NCOLS, DB_HEPPU_LIST_SQL("") },
	[DB_HEPPU_LIST_AGENT] = { "heppu_list_agent", HEPPU_CALL_NCOLS,
				  DB_HEPPU_LIST_SQL(" AND c.agent_id = $6") },
	[DB_HEPPU_LIST_STATUS] = { "heppu_list_status", HEPPU_CALL_NCOLS,
				   DB_HEPPU_LIST_SQL(" AND c.heppu_status = $6") },
	[DB_HEPPU_LIST_AGENT_STATUS] = { "heppu_list_agent_status", HEPPU_CALL_NCOLS,
					 DB_HEPPU_LIST_SQL(" AND c.agent_id = $6 AND c.heppu_status = $7") },
	/* GET /callstop-metrics: pending uses the partial index of due rows */
	[DB_OUTBOX_DEPTH] = { "outbox_depth", OUTBOX_DEPTH_NCOLS,
			      /* one partial index each (sql/001_schema.sql): done rows are not read;
			       * the pending ones once for their count and their oldest */
			      "SELECT count(*), coalesce(floor(extract(epoch FROM now() - min(created_at))), 0)::bigint,"
			      " (SELECT count(*) FROM termination_outbox WHERE state = 'failed')"
			      " FROM termination_outbox WHERE state = 'pending'" },
	/* Claims of one provider's rows (SPEC 6): the worker takes the rows its
	 * cancel just wrote (never tried: attempts = 0, still within their grace
	 * period), the retry child the due ones; one provider's rows alone, so
	 * that a provider that hangs never holds back another's.  attempts
	 * counted and next_attempt_at pushed past the send's timeout, so that no
	 * other process sends the row meanwhile and a crash mid-send only delays
	 * it; claimed_until marks a row on its way out, which a pull-forward
	 * leaves alone. */
	[DB_OUTBOX_CLAIM_NEW] = { "outbox_claim_new", OUTBOX_CLAIM_NCOLS,
				  OUTBOX_ASYNC
				  "UPDATE termination_outbox SET attempts = attempts + 1, updated_at = now(),"
				  " next_attempt_at = now() + make_interval(secs => $2::integer),"
				  " claimed_until = now() + make_interval(secs => $2::integer)"
				  " FROM async"
				  " WHERE id IN (SELECT id FROM termination_outbox"
				  "  WHERE id = ANY ($1::bigint[]) AND state = 'pending' AND attempts = 0"
				  "  FOR UPDATE SKIP LOCKED)"
				  " RETURNING id, target, idempotency_key, attempts,"
				  "  floor(extract(epoch FROM now() - created_at))::bigint, provider" },
	[DB_OUTBOX_CLAIM_DUE_OF] = { "outbox_claim_due_of", OUTBOX_CLAIM_NCOLS,
				     "UPDATE termination_outbox SET attempts = attempts + 1, updated_at = now(),"
				     " next_attempt_at = now() + make_interval(secs => $3::integer),"
				     " claimed_until = now() + make_interval(secs => $3::integer)"
				     " WHERE id IN (SELECT id FROM termination_outbox"
				     "  WHERE state = 'pending' AND next_attempt_at <= now() AND provider = $1"
				     "  ORDER BY next_attempt_at LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
				     " RETURNING id, target, idempotency_key, attempts,"
				     "  floor(extract(epoch FROM now() - created_at))::bigint, provider" },
	/* sent (SPEC 11): due for the verifier at once; done (a provider with
	 * no read-back): verified now */
	[DB_OUTBOX_RESULT] = { "outbox_result", OUTBOX_RESULT_COL_NCOLS,
			       OUTBOX_ASYNC
			       "UPDATE termination_outbox o SET state = r.state, last_error = r.last_error, updated_at = now(),"
			       " claimed_until = NULL, next_attempt_at = CASE WHEN r.state = 'pending'"
			       "  THEN now() + r.delay_ms * interval '1 millisecond' WHEN r.state = 'sent' THEN now()"
			       "  ELSE o.next_attempt_at END,"
			       " sent_at = CASE WHEN r.state IN ('sent', 'done') THEN now() ELSE o.sent_at END,"
			       " verified_at = CASE WHEN r.state = 'done' THEN now() ELSE o.verified_at END"
			       " FROM async, jsonb_to_recordset($1::jsonb) AS r (id bigint, state text, last_error text,"
			       "  delay_ms bigint)"
			       " WHERE o.id = r.id AND o.state = 'pending'"
			       " RETURNING o.provider, o.state, extract(epoch FROM o.verified_at - o.created_at)" },
	[DB_OUTBOX_PULL_FORWARD] = { "outbox_pull_forward", OUTBOX_PULL_FORWARD_NCOLS,
				     "SELECT callstop_outbox_pull_forward($1)" },
	[DB_OUTBOX_OF_PROVIDERS] = { "outbox_of_providers", OUTBOX_OF_PROVIDERS_NCOLS,
				     "SELECT id, provider FROM termination_outbox"
				     " WHERE id = ANY ($1::bigint[]) AND state = 'pending' AND attempts = 0 ORDER BY id" },
	[DB_TX_BEGIN] = { "tx_begin", 0, "BEGIN" },
	[DB_TX_COMMIT] = { "tx_commit", 0, "COMMIT" },
	[DB_TX_ROLLBACK] = { "tx_rollback", 0, "ROLLBACK" },
	[DB_IDEM_CLAIM] = { "idem_claim", IDEM_CLAIM_NCOLS,
			    "SELECT verdict, status, body FROM callstop_idempotency_claim($1, $2, $3, $4::integer)" },
	[DB_IDEM_STORE] = { "idem_store", 0,
			    "SELECT FROM callstop_idempotency_store($1, $2, $3, $4::integer, $5, $6::integer,"
			    " $7::boolean)" },
	[DB_IDEM_FINISH] = { "idem_finish", 0,
			     "SELECT FROM callstop_idempotency_finish($1, $2, $3::integer, $4)" },
	[DB_IDEM_PRUNE] = { "idem_prune", IDEM_PRUNE_NCOLS,
			    "SELECT callstop_idempotency_prune($1::integer)" },
	/* The verifier (SPEC 11): sent rows, oldest due first, claimed for the
	 * whole verification (the lease outlasts verify_deadline); a verifier
	 * that dies leaves them to be claimed again when the lease ends. */
	[DB_VERIFY_CLAIM] = { "verify_claim", VERIFY_CLAIM_NCOLS,
			      OUTBOX_ASYNC
			      "UPDATE termination_outbox SET updated_at = now(),"
			      " next_attempt_at = now() + make_interval(secs => $2::integer),"
			      " claimed_until = now() + make_interval(secs => $2::integer)"
			      " FROM async"
			      " WHERE id IN (SELECT id FROM termination_outbox"
			      "  WHERE state = 'sent' AND next_attempt_at <= now()"
			      "  ORDER BY next_attempt_at LIMIT $1::integer FOR UPDATE SKIP LOCKED)"
			      " RETURNING id, call_id, provider, target,"
			      "  floor(extract(epoch FROM now() - coalesce(sent_at, now())) * 1000)::bigint" },
	/* done: verified ago_ms before this statement; sent: released (due
	 * again at once); unknown: final, last_error says what was there */
	[DB_VERIFY_RESULT] = { "verify_result", OUTBOX_RESULT_COL_NCOLS,
			       OUTBOX_ASYNC
			       "UPDATE termination_outbox o SET state = r.state, last_error = r.last_error, updated_at = now(),"
			       " claimed_until = NULL,"
			       " next_attempt_at = CASE WHEN r.state = 'sent' THEN now() ELSE o.next_attempt_at END,"
			       " verified_at = CASE WHEN r.state = 'done'"
			       "  THEN now() - r.ago_ms * interval '1 millisecond' ELSE o.verified_at END"
			       " FROM async, jsonb_to_recordset($1::jsonb) AS r (id bigint, state text, last_error text,"
			       "  ago_ms bigint)"
			       " WHERE o.id = r.id AND o.state = 'sent'"
			       " RETURNING o.provider, o.state, extract(epoch FROM o.verified_at - o.created_at)" },
	/* Campaign control (SPEC 10, 12): one function of sql/010_campaign.sql
	 * each, one transaction each */
	[DB_BATCH_PAUSE] = { "batch_pause", PAUSE_ROW_NCOLS,
			     "SELECT outcome, batch_id, job_id, status, released_count, terminated_count, active_count,"
			     " array_to_json(outbox_rows)"
			     " FROM callstop_pause($1::bigint, $2, $3::boolean, $4, $5::bigint, $6, $7::text[])" },
	[DB_BATCH_RESUME] = { "batch_resume", PAUSE_ROW_NCOLS,
			      "SELECT outcome, batch_id, job_id, status, released_count, terminated_count, active_count,"
			      " array_to_json(outbox_rows)"
			      " FROM callstop_resume($1::bigint, $2, $3, $4::bigint, $5)" },
	[DB_SUPPRESS] = { "suppress", SUPPRESS_ROW_NCOLS,
			  "SELECT added, already_suppressed, entries_cancelled, calls_cancelled, array_to_json(outbox_rows)"
			  " FROM callstop_suppress($1::bigint, $2::text[], $3, $4::boolean, $5, $6::bigint, $7, $8::text[])" },
	[DB_UNSUPPRESS] = { "unsuppress", 1,
			    "SELECT number FROM callstop_unsuppress($1::bigint, $2, $3, $4)" },
	[DB_SUPPRESSION_GET] = { "suppression_get", SUPPRESSION_NCOLS,
				 "SELECT number, reason, callstop_rfc3339(created_at), id FROM suppressions"
				 " WHERE tenant_id = $1::bigint AND number = $2" },
	/* keyset pages (suppressions_page_idx), never OFFSET */
	[DB_SUPPRESSION_LIST] = { "suppression_list", SUPPRESSION_NCOLS,
				  "SELECT number, reason, callstop_rfc3339(created_at), id FROM suppressions"
				  " WHERE tenant_id = $1::bigint AND id > $2::bigint ORDER BY tenant_id, id LIMIT $3::integer" },
	[DB_CANCEL_MATCHING] = { "cancel_matching", MATCH_ROW_NCOLS,
				 "SELECT outcome, matched_calls, matched_entries, cancelled_count, calls,"
				 " array_to_json(outbox_rows)"
				 " FROM callstop_cancel_matching($1::bigint, $2::jsonb, $3::boolean, $4::boolean, $5::boolean,"
				 "  $6::integer, $7, $8::bigint, $9, $10::text[])" },
	/* prepared only once the schema is current (common/db_schema.h) */
	[DB_SCHEMA_VERSION] = { "schema_version", SCHEMA_VERSION_NCOLS, DB_SCHEMA_VERSION_SQL },
	/* SPEC 9: sql/011_webhooks.sql says how the claim keeps the order of
	 * each resource's events and why it is a function */
	/* sql/014_webhook_announce.sql: a cancel's call.cancelled is written
	 * here, from its marked cancel_history row, before the claim */
	[DB_WEBHOOK_ANNOUNCE] = { "webhook_announce", 1, "SELECT callstop_webhook_announce($1::integer)" },
	[DB_WEBHOOK_CLAIM] = { "webhook_claim", WEBHOOK_CLAIM_NCOLS,
			       "SELECT * FROM callstop_webhook_claim($1::integer, $2::integer)" },
	[DB_WEBHOOK_RESULT] = { "webhook_result", 0,
				"UPDATE webhook_deliveries d SET state = r.state, last_status = r.status,"
				" last_error = r.last_error, claimed_until = NULL, updated_at = now(),"
				" delivered_at = CASE WHEN r.state = 'delivered' THEN now() END,"
				" next_attempt_at = CASE WHEN r.state = 'pending'"
				"  THEN now() + r.delay_ms * interval '1 millisecond' ELSE d.next_attempt_at END"
				" FROM jsonb_to_recordset($1::jsonb)"
				"  AS r (id bigint, state text, status integer, last_error text, delay_ms bigint)"
				" WHERE d.id = r.id AND d.state = 'pending'" },
	[DB_WEBHOOK_GONE] = { "webhook_gone", WEBHOOK_GONE_NCOLS,
			      "SELECT callstop_webhook_gone($1::bigint)" },
	/* GET /callstop-metrics: the pending ones by their partial index */
	[DB_WEBHOOK_DEPTH] = { "webhook_depth", WEBHOOK_DEPTH_NCOLS,
			       "WITH a AS (SELECT count(*) AS n, min(at) AS oldest FROM cancel_history WHERE announce)"
			       " SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM webhook_events_id_seq),"
			       " count(*) + (SELECT n FROM a), coalesce(floor(extract(epoch FROM"
			       "  now() - least(min(queued_at), (SELECT oldest FROM a)))), 0)::bigint,"
			       " (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed')"
			       " FROM webhook_deliveries WHERE state = 'pending'" },
};
/* clang-format on */
