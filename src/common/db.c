/*
 * db.c - see db.h.
 */
#include "common/db.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/conf.h"
#include "common/db_int.h"
#include "common/db_schema.h"
#include "common/log.h"
#include "common/pgwait.h"
#include "common/statements.h"
#include "common/wake.h"

static const char *const db_param_names[DB_N_PARAMS] = {
	[DB_P_CONNECT_TIMEOUT] = "connect_timeout",   [DB_P_KA_IDLE] = "keepalives_idle",
	[DB_P_KA_INTERVAL] = "keepalives_interval",   [DB_P_KA_COUNT] = "keepalives_count",
	[DB_P_TCP_USER_TIMEOUT] = "tcp_user_timeout",
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
	db->schema_seen = -1;
	return db;
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	if (db->pending != NULL)
		PQfinish(db->pending);
	free(db->conninfo);
	free(db);
}

void db_configure(struct db *db, const struct conf *cfg)
{
	int cap;

	if (db == NULL)
		return;
	db->params[DB_P_CONNECT_TIMEOUT] = cfg->database_connect_timeout;
	db->params[DB_P_KA_IDLE] = cfg->database_keepalives_idle;
	db->params[DB_P_KA_INTERVAL] = cfg->database_keepalives_interval;
	db->params[DB_P_KA_COUNT] = cfg->database_keepalives_count;
	db->params[DB_P_TCP_USER_TIMEOUT] = cfg->database_tcp_user_timeout_ms;
	db->stmt_timeout_ms = cfg->database_statement_timeout_ms;
	db->batch_timeout_ms = cfg->database_batch_timeout_ms;
	/* PostgreSQL must give up on a batch (rolled back: 503) before the
	 * master kills the worker (a 502 whose outcome nobody knows) */
	cap = cfg->request_timeout * 1000 - 1000 - DB_GRACE_MS;
	if (cfg->request_timeout > 0 && db->batch_timeout_ms > cap)
		db->batch_timeout_ms = cap;
	if (db->batch_timeout_ms < db->stmt_timeout_ms)
		db->batch_timeout_ms = db->stmt_timeout_ms;
	/* the channels whose child runs on this host: the retry child always,
	 * the delivery child unless [webhook] enabled = no (wake.h) */
	db->wake_local = 0;
	if (wake_ready(WAKE_OUTBOX))
		db->wake_local |= 1u << WAKE_OUTBOX;
	if (cfg->webhook_enabled && wake_ready(WAKE_WEBHOOK))
		db->wake_local |= 1u << WAKE_WEBHOOK;
}

void db_disconnect(struct db *db)
{
	if (db->tx)
		db->tx = 2;
	db->wake_due = 0; /* the transaction, if any, is gone */
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
}

/* Connect with our defaults first: the conninfo (an expanded dbname)
 * overrides any of them it sets itself, and the NULL-terminated over[]
 * (key, value pairs; empty values skipped) overrides the conninfo.
 * Blocking, or started only (async: PQconnectStartParams). */
static PGconn *db_open(const struct db *db, const char *const *over, int async)
{
	const char *keys[DB_N_PARAMS + 8], *vals[DB_N_PARAMS + 8];
	char buf[DB_N_PARAMS][16];
	int i, n = 0;

	if (db->params[DB_P_KA_IDLE] || db->params[DB_P_KA_INTERVAL] || db->params[DB_P_KA_COUNT]) {
		keys[n] = "keepalives";
		vals[n++] = "1";
	}
	for (i = 0; i < DB_N_PARAMS; i++) {
		if (db->params[i] == 0)
			continue;
		snprintf(buf[i], sizeof(buf[i]), "%d", db->params[i]);
		keys[n] = db_param_names[i];
		vals[n++] = buf[i];
	}
	keys[n] = "dbname";
	vals[n++] = db->conninfo;
	for (i = 0; over != NULL && over[i] != NULL && n < DB_N_PARAMS + 7; i += 2) {
		if (over[i + 1] == NULL || over[i + 1][0] == '\0')
			continue;
		keys[n] = over[i];
		vals[n++] = over[i + 1];
	}
	keys[n] = NULL;
	vals[n] = NULL;
	return async ? PQconnectStartParams(keys, vals, 1) : PQconnectdbParams(keys, vals, 1);
}

/*
 * Is the server of db->conn alive, while a statement on it has been running
 * for a while?  A lock wait is, a stopped or unreachable server is not, and
 * only a new connection to the same address tells them apart (a silent
 * server cancels nothing itself).  Returns 0 if it does not answer the
 * connection attempt within PGWAIT_PROBE_MS, else 1 (a refusal or an error also
 * counts as an answer: a server that is gone closes db->conn too).
 */
static int db_server_alive(void *arg)
{
	const struct db *db = arg;
	const char *over[] = { "host",
			       PQhost(db->conn),
			       "hostaddr",
			       PQhostaddr(db->conn),
			       "port",
			       PQport(db->conn),
			       "target_session_attrs",
			       "any",
			       NULL };
	int64_t deadline = clock_monotonic_ms() + PGWAIT_PROBE_MS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *c = db_open(db, over, 1);
	int alive = 1;

	while (c != NULL && PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		int rc = pgwait_socket(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);

		if (rc <= 0) {
			alive = rc < 0;
			break;
		}
		st = PQconnectPoll(c);
	}
	PQfinish(c);
	return alive;
}

/* Run a command (SET, LISTEN) under the short deadline.  0 or -1 (logged). */
int db_command(struct db *db, const char *sql)
{
	int64_t deadline =
		clock_monotonic_ms() + (db->stmt_timeout_ms ? db->stmt_timeout_ms + DB_GRACE_MS : 60000);
	PGresult *res = NULL;
	int timed_out = 0, ok;

	if (PQsendQuery(db->conn, sql))
		res = pgwait_result(db->conn, deadline, db_server_alive, db, &timed_out);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok) {
		char msg[256];

		pgwait_escape(msg, sizeof(msg), timed_out ? "no answer in time" : PQerrorMessage(db->conn));
		log_error("database: %s failed: %s", sql, msg);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * The row contract of statement i: as many result columns as its enum in
 * db.h names.  A statement edited without its enum (or the reverse) fails
 * the connection here, logged, instead of reading the wrong column later.
 */
static int db_check_columns(struct db *db, int i, int64_t deadline)
{
	PGresult *res = NULL;
	int timed_out = 0, ok, n;

	if (PQsendDescribePrepared(db->conn, db_statements[i].name))
		res = pgwait_result(db->conn, deadline, db_server_alive, db, &timed_out);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	n = ok ? PQnfields(res) : -1;
	if (!ok) {
		char msg[256];

		pgwait_escape(msg, sizeof(msg), timed_out ? "no answer in time" : PQerrorMessage(db->conn));
		log_error("database: cannot describe statement %s: %s", db_statements[i].name, msg);
	} else if (n != db_statements[i].ncols) {
		log_error("database: statement %s returns %d columns, db.h names %d", db_statements[i].name,
			  n, db_statements[i].ncols);
	}
	PQclear(res);
	return ok && n == db_statements[i].ncols ? 0 : -1;
}

static int db_prepare_all(struct db *db)
{
	int64_t deadline =
		clock_monotonic_ms() + (db->stmt_timeout_ms ? db->stmt_timeout_ms + DB_GRACE_MS : 60000);
	int i;

	for (i = 0; i < DB_N_STMTS; i++) {
		PGresult *res = NULL;
		int timed_out = 0, ok;

		if (PQsendPrepare(db->conn, db_statements[i].name, db_statements[i].sql, 0, NULL))
			res = pgwait_result(db->conn, deadline, db_server_alive, db, &timed_out);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok) {
			char msg[256];

			pgwait_escape(msg, sizeof(msg),
				      timed_out ? "no answer in time" : PQerrorMessage(db->conn));
			log_error("database: cannot prepare statement %s: %s", db_statements[i].name, msg);
		}
		PQclear(res);
		if (!ok || db_check_columns(db, i, deadline) < 0)
			return -1;
	}
	return 0;
}

/* Connected: the schema is current, prepare, LISTEN.  0, or -1 after logging. */
static int db_setup(struct db *db)
{
	db->session_timeout_ms = -1;
	if (db_wake_setup(db) < 0 ||
	    db_schema_check(db->conn,
			    clock_monotonic_ms() + (db->stmt_timeout_ms ? db->stmt_timeout_ms : 60000),
			    &db->schema_seen) != 0 ||
	    db_prepare_all(db) < 0)
		return -1;
	if (db->listen_channel != NULL) {
		char sql[80];

		snprintf(sql, sizeof(sql), "LISTEN %s", db->listen_channel);
		if (db_command(db, sql) < 0)
			return -1;
	}
	return 0;
}

/*
 * While the database is down: one attempt at a time runs in the background of
 * the requests (PQconnectStartParams).  Each call looks whether the server has
 * answered, and if so drives the handshake for DB_PEEK_MS at most: a silent
 * server costs a request nothing, the first request after it answers is served.
 * Past connect_timeout the attempt is dropped and the next one blocks: libpq's
 * blocking connect then moves on to the next host of a multi-host conninfo,
 * which its asynchronous API does not.  Returns the connection (CONNECTION_OK,
 * the caller's), or NULL.
 */
static PGconn *db_connect_down(struct db *db, int64_t now)
{
	int64_t limit = db->params[DB_P_CONNECT_TIMEOUT] ? db->params[DB_P_CONNECT_TIMEOUT] * 1000 : 10000;
	int64_t deadline = now + 1; /* a look: a silent server costs the request nothing */
	PGconn *c;

	if (db->pending == NULL) {
		db->pending = db_open(db, NULL, 1);
		db->pending_st = PGRES_POLLING_WRITING; /* PQconnectPoll's first wait */
		db->pending_since = now;
	}
	while (db->pending != NULL && PQstatus(db->pending) != CONNECTION_BAD &&
	       db->pending_st != PGRES_POLLING_OK && db->pending_st != PGRES_POLLING_FAILED) {
		int rc = pgwait_socket(db->pending,
				       db->pending_st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);

		if (rc == 0 && clock_monotonic_ms() - db->pending_since < limit)
			return NULL; /* not yet: 503 now, go on at the next call */
		if (rc <= 0) {
			db->blocking_next = rc == 0; /* past connect_timeout: dropped */
			break;
		}
		db->pending_st = PQconnectPoll(db->pending);
		deadline = clock_monotonic_ms() + DB_PEEK_MS; /* it answers: the rest is quick */
	}
	c = db->pending;
	db->pending = NULL;
	if (PQstatus(c) == CONNECTION_OK)
		return c;
	PQfinish(c);
	return NULL;
}

int db_connect(struct db *db)
{
	int64_t start;

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	db_disconnect(db);
	start = clock_monotonic_ms();
	/* failed fast a moment ago: answer now, and do not hammer a server that
	 * refuses (a slow failure, one that timed out, is not paused) */
	if (db->pending == NULL && db->retry_at_ms != 0 && start < db->retry_at_ms)
		return -1;
	if (db->down && !db->blocking_next) {
		if (db->pending != NULL)
			start = db->pending_since;
		db->conn = db_connect_down(db, clock_monotonic_ms());
		if (db->conn == NULL && db->pending != NULL)
			return -1; /* still under way */
	} else {
		db->blocking_next = 0;
		db->conn = db_open(db, NULL, 0);
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		if (!db->down_logged) {
			char msg[512];

			pgwait_escape(msg, sizeof(msg), PQerrorMessage(db->conn));
			log_error("database: cannot connect: %s", msg);
			db->down_logged = 1;
		}
		db_disconnect(db);
		db->down = 1;
		db->schema_seen = -1;
		db->retry_at_ms = start + DB_RETRY_MS;
		return -1;
	}
	if (db_setup(db) < 0) {
		db_disconnect(db);
		db->down = 1;
		db->retry_at_ms = clock_monotonic_ms() + DB_RETRY_MS;
		return -1;
	}
	if (db->down_logged || db->connects > 0)
		log_info("database: connected");
	db->down_logged = 0;
	db->down = 0;
	db->retry_at_ms = 0;
	db->connects++;
	return 0;
}

static int db_retryable_sqlstate(const char *state)
{
	return state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

/* The connection is gone even if PQstatus() still says OK: no result, an
 * error libpq made up itself (no SQLSTATE: "server closed the connection
 * unexpectedly"), connection exceptions (08), the server shutting down,
 * crashed or starting (57P01..57P03), or a read-only standby (25006, after
 * a failover): each is "nothing committed, connect again". */
static int db_lost(const PGconn *conn, const PGresult *res, const char *state)
{
	if (res == NULL || PQstatus(conn) != CONNECTION_OK || state == NULL || *state == '\0')
		return 1;
	return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	       strcmp(state, "57P03") == 0 || strcmp(state, "25006") == 0;
}

/* SET statement_timeout for this statement class, if the session has
 * another.  0, or -1 (the connection is then dropped). */
static int db_set_timeout(struct db *db, int ms)
{
	char sql[64];

	if (ms == 0 || db->session_timeout_ms == ms)
		return 0;
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", ms);
	if (db_command(db, sql) < 0) {
		db_disconnect(db);
		return -1;
	}
	db->session_timeout_ms = ms;
	return 0;
}

/* A statement did not come back by its deadline, or the server went silent. */
static void db_timed_out(struct db *db, enum db_stmt stmt, int64_t since)
{
	log_error(
		"database: %s: no answer after %lld ms, and the server does not answer a new connection either"
		" (or the statement is past its statement_timeout); dropping the connection",
		db_statements[stmt].name, (long long)(clock_monotonic_ms() - since));
	db->down_logged = 1;
	db->down = 1;
	db_disconnect(db);
	/* no pause: the next attempt runs in the background (db_connect_down) */
	db->retry_at_ms = 0;
	db->last_error = DB_UNAVAILABLE;
}

static PGresult *db_run(struct db *db, enum db_stmt stmt, int timeout_ms, int nparams,
			const char *const *params)
{
	/* inside a transaction, a retry would run the statement alone */
	int conn_retry = db->tx ? 0 : 1, conflict_retries = db->tx ? 0 : 5;

	if (db->tx == 2) {
		if (stmt == DB_TX_COMMIT || stmt == DB_TX_ROLLBACK)
			db->tx = 0;
		db_wake_settle(db, 0);
		db->last_error = DB_UNAVAILABLE;
		return NULL;
	}
	for (;;) {
		PGresult *res = NULL;
		const char *state;
		int timed_out = 0;
		int64_t sent;

		if (db_connect(db) < 0 || db_set_timeout(db, timeout_ms) < 0) {
			db->last_error = DB_UNAVAILABLE;
			return NULL;
		}
		if (!db->tx)
			db_wake_settle(db, 0); /* what an attempt that failed gathered */
		sent = clock_monotonic_ms();
		if (PQsendQueryPrepared(db->conn, db_statements[stmt].name, nparams, params, NULL, NULL, 0))
			res = pgwait_result(db->conn,
					    sent + (timeout_ms ? timeout_ms + DB_GRACE_MS : INT32_MAX),
					    db_server_alive, db, &timed_out);
		if (timed_out) {
			db_timed_out(db, stmt, sent);
			return NULL;
		}
		if (stmt == DB_TX_COMMIT || stmt == DB_TX_ROLLBACK) {
			/* ended either way; a rollback undoes a SET made in it */
			db->tx = 0;
			db->session_timeout_ms = stmt == DB_TX_ROLLBACK ? -1 : db->session_timeout_ms;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
			db->tx = stmt == DB_TX_BEGIN ? 1 : db->tx;
			db->last_error = DB_OK;
			if (!db->tx) /* committed (or rolled back): wake whom it queued work for */
				db_wake_settle(db, stmt != DB_TX_ROLLBACK);
			return res;
		}
		state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (db_lost(db->conn, res, state)) {
			char msg[256], sqlstate[8];

			/* state points into res: copied before res is freed */
			snprintf(sqlstate, sizeof(sqlstate), "%s", state && *state ? state : "none");
			state = sqlstate;
			pgwait_escape(msg, sizeof(msg),
				      res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
			PQclear(res);
			db_disconnect(db);
			if (conn_retry-- > 0) {
				log_info("database: %s: connection lost (SQLSTATE %s: %s), reconnecting",
					 db_statements[stmt].name, state, msg);
				continue;
			}
			if (!db->down_logged) {
				log_error("database: connection lost during %s: %s", db_statements[stmt].name,
					  msg);
				db->down_logged = 1;
			}
			db->last_error = DB_UNAVAILABLE;
			return NULL;
		}
		if (db_retryable_sqlstate(state) && conflict_retries-- > 0) {
			log_info("database: %s: SQLSTATE %s, retrying", db_statements[stmt].name, state);
			PQclear(res);
			continue;
		}
		if (strcmp(state, "57014") == 0) {
			/* statement_timeout (or a pg_cancel_backend): PostgreSQL
			 * rolled the statement back, nothing changed */
			log_warn("database: %s: cancelled after %d ms (statement_timeout); rolled back",
				 db_statements[stmt].name, timeout_ms);
			PQclear(res);
			db->last_error = DB_UNAVAILABLE;
			return NULL;
		}
		log_error("database: %s failed: SQLSTATE %s: %s", db_statements[stmt].name, state,
			  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		PQclear(res);
		db->last_error = DB_QUERY_ERROR;
		return NULL;
	}
}

PGresult *db_exec(struct db *db, enum db_stmt stmt, int nparams, const char *const *params)
{
	return db_run(db, stmt, db->stmt_timeout_ms, nparams, params);
}

PGresult *db_exec_long(struct db *db, enum db_stmt stmt, int nparams, const char *const *params)
{
	return db_run(db, stmt, db->batch_timeout_ms, nparams, params);
}

enum db_error db_last_error(const struct db *db)
{
	return db->last_error;
}

int db_schema_seen(const struct db *db)
{
	return db->schema_seen;
}

unsigned long db_connects(const struct db *db)
{
	return db->connects;
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

int db_backend_pid(const struct db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK ? PQbackendPID(db->conn) : 0;
}
