/*
 * db.c - see db.h.
 */
#include "common/db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct db_statement {
	const char *name;
	int ncols;         /* the *_NCOLS of its column enum in db.h (0: no rows) */
	const char *sql;
};

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
	" WHERE c.tenant_id = $1::bigint AND c.created_at >= $2::timestamptz AND c.created_at < $3::timestamptz" \
	filter \
	" ORDER BY c.created_at DESC, c.id DESC LIMIT $4::integer OFFSET $5::integer"

/* Every statement callstopd runs, in one place (STYLE.md 3).  Times are
 * formatted by callstop_rfc3339() (sql/004_api.sql). */
static const struct db_statement db_statements[DB_N_STMTS] = {
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
		"SELECT provider, target, state, attempts, last_error FROM termination_outbox"
		" WHERE call_id = $1::uuid ORDER BY id" },
	[DB_BATCH_STATUS] = { "batch_status", BATCH_STATUS_NCOLS,
		"SELECT id, job_id, status, callstop_rfc3339(created_at), callstop_rfc3339(cancelled_at),"
		" total_count, pending_count + claimed_count, running_count, completed_count, failed_count,"
		" cancelled_count"
		" FROM voice_call_batches"
		" WHERE tenant_id = $1::bigint AND (job_id = $2 OR id = callstop_uuid_or_null($2))" },
	[DB_BATCH_HISTORY] = { "batch_history", BATCH_HISTORY_NCOLS,
		"SELECT callstop_rfc3339(at), action, force, cancelled_count, route, key_id, request_id"
		" FROM cancel_history WHERE batch_id = $1::uuid ORDER BY at, id LIMIT 100" },
	[DB_BATCH_ENTRIES] = { "batch_entries", BATCH_ENTRIES_NCOLS,
		"SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
		" FROM voice_call_batch_entries WHERE batch_id = $1::uuid AND id > $2::bigint"
		" ORDER BY id LIMIT $3::integer" },
	/* Two ordered index scans merged, so that a page costs the same for
	 * any batch size even when "pending" also means "claimed". */
	[DB_BATCH_ENTRIES_BY_STATUS] = { "batch_entries_by_status", BATCH_ENTRIES_NCOLS,
		"SELECT * FROM ("
		" (SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
		"  FROM voice_call_batch_entries WHERE batch_id = $1::uuid AND status = $4 AND id > $2::bigint"
		"  ORDER BY id LIMIT $3::integer)"
		" UNION ALL"
		" (SELECT id, status, call_log_id, to_number, callstop_rfc3339(updated_at)"
		"  FROM voice_call_batch_entries WHERE batch_id = $1::uuid AND status = $5 AND id > $2::bigint"
		"  ORDER BY id LIMIT $3::integer)"
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
	[DB_HEPPU_LIST] = { "heppu_list", HEPPU_CALL_NCOLS,
		DB_HEPPU_LIST_SQL("") },
	[DB_HEPPU_LIST_AGENT] = { "heppu_list_agent", HEPPU_CALL_NCOLS,
		DB_HEPPU_LIST_SQL(" AND c.agent_id = $6") },
	[DB_HEPPU_LIST_STATUS] = { "heppu_list_status", HEPPU_CALL_NCOLS,
		DB_HEPPU_LIST_SQL(" AND c.heppu_status = $6") },
	[DB_HEPPU_LIST_AGENT_STATUS] = { "heppu_list_agent_status", HEPPU_CALL_NCOLS,
		DB_HEPPU_LIST_SQL(" AND c.agent_id = $6 AND c.heppu_status = $7") },
	/* GET /callstop-metrics: pending uses the partial index of due rows */
	[DB_OUTBOX_DEPTH] = { "outbox_depth", OUTBOX_DEPTH_NCOLS,
		/* one partial index each (sql/001_schema.sql): done rows are not read */
		"SELECT 'pending', count(*) FROM termination_outbox WHERE state = 'pending'"
		" UNION ALL SELECT 'failed', count(*) FROM termination_outbox WHERE state = 'failed'" },
	/* Claims of one provider's rows (SPEC 6): the worker takes the rows its
	 * cancel just wrote (never tried: attempts = 0, still within their grace
	 * period), the retry child the due ones; one provider's rows alone, so
	 * that a provider that hangs never holds back another's.  attempts
	 * counted and next_attempt_at pushed past the send's timeout, so that no
	 * other process sends the row meanwhile and a crash mid-send only delays
	 * it; claimed_until marks a row on its way out, which a pull-forward
	 * leaves alone. */
	[DB_OUTBOX_CLAIM_NEW] = { "outbox_claim_new", OUTBOX_CLAIM_NCOLS,
		"UPDATE termination_outbox SET attempts = attempts + 1, updated_at = now(),"
		" next_attempt_at = now() + make_interval(secs => $2::integer),"
		" claimed_until = now() + make_interval(secs => $2::integer)"
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
	[DB_OUTBOX_RESULT] = { "outbox_result", 0,
		"UPDATE termination_outbox o SET state = r.state, last_error = r.last_error, updated_at = now(),"
		" claimed_until = NULL, next_attempt_at = CASE WHEN r.state = 'pending'"
		"  THEN now() + r.delay_ms * interval '1 millisecond' ELSE o.next_attempt_at END"
		" FROM jsonb_to_recordset($1::jsonb) AS r (id bigint, state text, last_error text, delay_ms bigint)"
		" WHERE o.id = r.id AND o.state = 'pending'" },
	[DB_OUTBOX_PULL_FORWARD] = { "outbox_pull_forward", OUTBOX_PULL_FORWARD_NCOLS,
		"SELECT callstop_outbox_pull_forward($1)" },
	[DB_OUTBOX_OF_PROVIDERS] = { "outbox_of_providers", OUTBOX_OF_PROVIDERS_NCOLS,
		"SELECT id, provider FROM termination_outbox"
		" WHERE id = ANY ($1::bigint[]) AND state = 'pending' AND attempts = 0 ORDER BY id" },
};

struct db {
	const char *listen_channel;  /* LISTENed on every (re)connection, or NULL */
	char *conninfo;
	PGconn *conn;
	enum db_error last_error;
	int down_logged;
	unsigned long connects;
};

struct db *db_new(const char *conninfo)
{
	struct db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->conninfo = strdup(conninfo);
	if (db->conninfo == NULL) {
		free(db);
		return NULL;
	}
	return db;
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db);
}

static void db_disconnect(struct db *db)
{
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
}

/*
 * The row contract of statement i: as many result columns as its enum in
 * db.h names.  A statement edited without its enum (or the reverse) fails
 * the connection here, logged, instead of reading the wrong column later.
 */
static int db_check_columns(struct db *db, int i)
{
	PGresult *res = PQdescribePrepared(db->conn, db_statements[i].name);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK, n = ok ? PQnfields(res) : -1;

	if (!ok)
		log_error("database: cannot describe statement %s: %s", db_statements[i].name,
			  PQerrorMessage(db->conn));
	else if (n != db_statements[i].ncols)
		log_error("database: statement %s returns %d columns, db.h names %d", db_statements[i].name, n,
			  db_statements[i].ncols);
	PQclear(res);
	return ok && n == db_statements[i].ncols ? 0 : -1;
}

static int db_prepare_all(struct db *db)
{
	int i;

	for (i = 0; i < DB_N_STMTS; i++) {
		PGresult *res = PQprepare(db->conn, db_statements[i].name, db_statements[i].sql, 0, NULL);
		int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		if (!ok)
			log_error("database: cannot prepare statement %s: %s", db_statements[i].name,
				  PQerrorMessage(db->conn));
		PQclear(res);
		if (!ok || db_check_columns(db, i) < 0)
			return -1;
	}
	return 0;
}

int db_connect(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	db_disconnect(db);
	db->conn = PQconnectdb(db->conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		if (!db->down_logged) {
			char *msg = PQerrorMessage(db->conn);
			size_t len = strlen(msg);
			/* libpq messages end in a newline; a log line must not */
			while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
				msg[--len] = '\0';
			log_error("database: cannot connect: %s", msg);
			db->down_logged = 1;
		}
		db_disconnect(db);
		return -1;
	}
	if (db_prepare_all(db) < 0) {
		db_disconnect(db);
		return -1;
	}
	if (db->listen_channel != NULL) {
		char sql[80];
		PGresult *res;
		int ok;

		snprintf(sql, sizeof(sql), "LISTEN %s", db->listen_channel);
		res = PQexec(db->conn, sql);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (!ok) {
			log_error("database: %s failed: %s", sql, PQerrorMessage(db->conn));
			db_disconnect(db);
			return -1;
		}
	}
	if (db->down_logged || db->connects > 0)
		log_info("database: connected");
	db->down_logged = 0;
	db->connects++;
	return 0;
}

static int db_retryable_sqlstate(const char *state)
{
	return state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

PGresult *db_exec(struct db *db, enum db_stmt stmt, int nparams, const char *const *params)
{
	int conn_retry = 1, conflict_retries = 5;

	for (;;) {
		PGresult *res;
		const char *state;

		if (db_connect(db) < 0) {
			db->last_error = DB_UNAVAILABLE;
			return NULL;
		}
		res = PQexecPrepared(db->conn, db_statements[stmt].name, nparams, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
			db->last_error = DB_OK;
			return res;
		}
		if (PQstatus(db->conn) != CONNECTION_OK) {
			PQclear(res);
			db_disconnect(db);
			if (conn_retry-- > 0)
				continue;
			if (!db->down_logged) {
				log_error("database: connection lost during %s", db_statements[stmt].name);
				db->down_logged = 1;
			}
			db->last_error = DB_UNAVAILABLE;
			return NULL;
		}
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (db_retryable_sqlstate(state) && conflict_retries-- > 0) {
			log_info("database: %s: SQLSTATE %s, retrying", db_statements[stmt].name, state);
			PQclear(res);
			continue;
		}
		log_error("database: %s failed: SQLSTATE %s: %s", db_statements[stmt].name, state ? state : "?",
			  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		PQclear(res);
		db->last_error = DB_QUERY_ERROR;
		return NULL;
	}
}

enum db_error db_last_error(const struct db *db)
{
	return db->last_error;
}

unsigned long db_connects(const struct db *db)
{
	return db->connects;
}

void db_listen(struct db *db, const char *channel)
{
	db->listen_channel = channel;
	db_disconnect(db);
}

int db_wait_notify(struct db *db, int timeout_ms)
{
	struct pollfd pfd;
	PGnotify *n;
	int got = 0, rc;

	if (db_connect(db) < 0)
		return -1;
	pfd.fd = PQsocket(db->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if (rc > 0 && PQconsumeInput(db->conn) == 0) {
		db_disconnect(db);
		return -1;
	}
	while ((n = PQnotifies(db->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

/* ---- row contracts ------------------------------------------------------ */

enum db_fetch db_fetch_one(struct db *db, enum db_stmt stmt, long long tenant_id, const char *id,
			   PGresult **row)
{
	char tenant[24];
	const char *params[2] = { tenant, id };
	PGresult *res;

	*row = NULL;
	snprintf(tenant, sizeof(tenant), "%lld", tenant_id);
	res = db_exec(db, stmt, 2, params);
	if (res == NULL)
		return DB_FETCH_ERROR;
	switch (PQntuples(res)) {
	case 0:
		PQclear(res);
		return DB_FETCH_NOT_FOUND;
	case 1:
		*row = res;
		return DB_FETCH_FOUND;
	default:
		log_error("database: %s returned %d rows, at most 1 expected", db_statements[stmt].name,
			  PQntuples(res));
		PQclear(res);
		db->last_error = DB_QUERY_ERROR;
		return DB_FETCH_ERROR;
	}
}

char *db_text_array(const char *const *v, size_t n)
{
	size_t len = 3, i;   /* braces and NUL */
	const char *p;
	char *out, *o;

	for (i = 0; i < n; i++) {
		len += 3;    /* quotes and comma */
		for (p = v[i]; *p != '\0'; p++)
			len += *p == '"' || *p == '\\' ? 2 : 1;
	}
	out = malloc(len);
	if (out == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

int db_backend_pid(const struct db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK ? PQbackendPID(db->conn) : 0;
}
