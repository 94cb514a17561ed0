/*
 * db.h - a worker's PostgreSQL connection and every statement callstopd runs.
 *
 * The SQL of callstopd lives in one table in statements.c (prepared once per
 * connection) and in the functions of sql/.  The connection is opened lazily
 * and re-opened by itself after PostgreSQL comes back: a call made while the
 * database is unreachable fails fast (DB_UNAVAILABLE) instead of blocking the
 * worker.
 *
 * Nothing waits on PostgreSQL without a bound (issue 10, defect 2): a
 * connection attempt is bounded by libpq's connect_timeout (per host); once
 * the database is found down, the next attempts run in the background of the
 * requests: a request is answered 503 at once while the server says nothing,
 * and the first one after it answers again is served (it waits DB_PEEK_MS at
 * most for the rest of the handshake); an
 * attempt that failed is not repeated until DB_RETRY_MS after it began (a
 * server that refuses is not hammered); and every statement runs under a server-side statement_timeout
 * of its class (short; the batch cancel long) and a client-side deadline
 * DB_GRACE_MS later, after which the connection is dropped: a stopped or
 * unreachable server is not going to cancel anything itself.  A statement
 * still running after PGWAIT_PROBE_MS (common/pgwait.h) has its server
 * probed, then every as long: a new connection to the same address, which
 * must answer within as long.  A statement waiting for a lock is let run,
 * one on a server that answers nothing is given up at once.  When the
 * server-side timeout fires (57014), PostgreSQL rolled the statement back;
 * after the client-side deadline the backend, if it ever resumes, is past
 * its own statement_timeout and rolls back as well - unless the statement
 * had already reached its commit (statement_timeout no longer applies there:
 * an fsync that stalls, a synchronous standby that does not answer), so
 * that a 503 after the deadline is "probably nothing changed"; a cancel
 * retried after it changes nothing twice.  Both are DB_UNAVAILABLE.
 */
#ifndef CALLSTOP_DB_H
#define CALLSTOP_DB_H

#include <stddef.h>

#include <libpq-fe.h>

#include "common/attr.h"

#include "common/statements.h"

enum db_error {
	DB_OK = 0,
	DB_UNAVAILABLE, /* no connection, it broke, or a statement timed out: nothing was committed */
	DB_QUERY_ERROR, /* the server refused the statement (logged with SQLSTATE) */
};

/* Connection attempts begin at least this far apart (ms). */
#define DB_RETRY_MS 500
/* While the database is down and a connection attempt has its first answer,
 * how long a request waits (ms) for the rest of the handshake before 503. */
#define DB_PEEK_MS 100
/* The client-side deadline of a statement: its statement_timeout + this (ms). */
#define DB_GRACE_MS 500

struct db;
struct conf;

/* A handle for conninfo (copied); does not connect yet.  NULL on ENOMEM.
 * Until db_configure(), libpq's defaults and no statement timeouts. */
struct db *db_new(const char *conninfo) MUST_CHECK;
void db_free(struct db *db);

/*
 * Take the database_* timeouts of cfg (callstop.conf(5)) for the next
 * connection and statements.  The libpq parameters (connect_timeout,
 * keepalives*, tcp_user_timeout) are used only where the conninfo does not
 * set them; the batch timeout is capped below request_timeout.  db may be
 * NULL (no-op).
 */
void db_configure(struct db *db, const struct conf *cfg);

/* Connect (and prepare every statement) unless connected.  Returns 0, or -1
 * after logging why (at most once per outage, not once per request). */
int db_connect(struct db *db) MUST_CHECK;

/*
 * Run a prepared statement with text parameters (NULL = SQL NULL), under
 * database_statement_timeout_ms.
 * A statement that fails on a broken connection is retried once on a new
 * connection (the old backend is gone, so it cannot have committed).  Broken
 * means: no result, an error without SQLSTATE (libpq's own: the server closed
 * the connection, even while PQstatus() still says OK), class 08, 57P01..57P03
 * (shutdown, crash, starting up) or 25006 (a standby after a failover).  A
 * serialization failure or deadlock (40001, 40P01) is retried up to 5 times.
 * Returns a PGresult with PGRES_TUPLES_OK that the caller PQclear()s, or NULL
 * with db_last_error() telling why.
 */
PGresult *db_exec(struct db *db, enum db_stmt stmt, int nparams, const char *const *params) MUST_CHECK;

/* The same under database_batch_timeout_ms: a cancel that names a batch. */
PGresult *db_exec_long(struct db *db, enum db_stmt stmt, int nparams, const char *const *params) MUST_CHECK;

enum db_error db_last_error(const struct db *db);

/* LISTEN on channel (a constant identifier) on this and every later
 * connection.  The channel string must outlive db. */
void db_listen(struct db *db, const char *channel);

/*
 * Wait up to timeout_ms for a notification on the LISTENed channel, or a
 * local wake-up of the same channel (common/wake.h: this host's callstopd
 * processes wake it so after their commits, other clients NOTIFY).
 * Returns 1 if one (or more) arrived, 0 on timeout or a signal, -1 if the
 * database is unreachable (then the caller sleeps and tries again).
 */
int db_wait_notify(struct db *db, int timeout_ms) MUST_CHECK;

/* The schema version the last connection found (common/db_schema.h), -1 if
 * none yet or the last attempt failed to connect. */
int db_schema_seen(const struct db *db);

/* Number of successful (re)connections since start, for metrics. */
unsigned long db_connects(const struct db *db);

/* What db_fetch_one() found. */
enum db_fetch {
	DB_FETCH_FOUND,
	DB_FETCH_NOT_FOUND,
	DB_FETCH_ERROR, /* db_last_error() tells which */
};

/*
 * The one row of a tenant-scoped lookup: stmt takes ($1 tenant_id, $2 id)
 * and returns at most one row (DB_CALL_STATUS, DB_BATCH_STATUS,
 * DB_HEPPU_CALL).  On DB_FETCH_FOUND *row is the result (one tuple) that the
 * caller PQclear()s; otherwise *row is NULL.  Two rows or more break the
 * contract: logged, DB_FETCH_ERROR with DB_QUERY_ERROR.
 */
enum db_fetch db_fetch_one(struct db *db, enum db_stmt stmt, long long tenant_id, const char *id,
			   PGresult **row) MUST_CHECK;

/*
 * v[0..n) as a PostgreSQL array literal for a text[] parameter: every
 * element double-quoted, '"' and '\' backslash-escaped ("Array Value Input"
 * in the PostgreSQL manual; a and b"c give {"a","b\"c"}), so that any string
 * travels as itself: none is read as NULL, no comma or brace splits
 * it.  Returns a malloc()ed string, or NULL on ENOMEM.
 */
char *db_text_array(const char *const *v, size_t n) __attribute__((warn_unused_result));

/* The process id of the connection's backend (PQbackendPID), 0 when not
 * connected: the master terminates it if this process dies in the middle
 * of a request (issue 10, defect 9). */
int db_backend_pid(const struct db *db);

#endif
