/*
 * db_int.h - the connection's private state, shared by db.c (connect,
 * statements, timeouts) and db_notify.c (LISTEN/NOTIFY).  Nothing outside
 * src/common/db*.c includes it; everyone else sees struct db as opaque
 * (common/db.h).
 */
#ifndef CALLSTOP_DB_INT_H
#define CALLSTOP_DB_INT_H

#include <stdint.h>

#include <libpq-fe.h>

#include "common/db.h"

/* libpq parameters added to the conninfo unless it sets them (db_configure). */
enum {
	DB_P_CONNECT_TIMEOUT,
	DB_P_KA_IDLE,
	DB_P_KA_INTERVAL,
	DB_P_KA_COUNT,
	DB_P_TCP_USER_TIMEOUT,
	DB_N_PARAMS
};

struct db {
	const char *listen_channel; /* LISTENed on every (re)connection, or NULL */
	char *conninfo;
	PGconn *conn;
	enum db_error last_error;
	int down_logged;
	unsigned long connects;
	int params[DB_N_PARAMS]; /* 0 = libpq's default */
	int stmt_timeout_ms;     /* 0 = none (not configured) */
	int batch_timeout_ms;
	int session_timeout_ms; /* the statement_timeout SET on conn, -1 = not set by us */
	int64_t retry_at_ms;    /* no connection attempt before (clock_monotonic_ms) */
	PGconn *pending;        /* an attempt in the background while down (db_connect_down) */
	PostgresPollingStatusType pending_st;
	int64_t pending_since;
	int blocking_next; /* 1: the background attempt took too long, the next one blocks */
	/* 1: the last connect failed or the server went silent, so connects run
	 * in the background (db_connect_down); a connection lost on a server
	 * that answers is reopened at once, blocking, as it would be at start */
	int down;
	/* DB_TX_BEGIN .. DB_TX_COMMIT/ROLLBACK (SPEC 8): 1 open, 2 its
	 * connection was lost (every statement fails until the ROLLBACK) */
	int tx;
	int schema_seen; /* the schema version the last connection found, -1: none (db_schema.h) */
	/* local wake-ups (common/wake.h): bits 1 << enum wake_channel */
	unsigned wake_local; /* channels this session wakes itself (callstop.wake_local) */
	unsigned wake_due;   /* channels the open transaction queued work for */
};

/* Close the connection (and any background attempt); the next statement
 * connects again.  LISTENs are renewed by that connect. */
void db_disconnect(struct db *db);

/* db.c: run a command (SET, LISTEN) under the short deadline; 0 or -1
 * (logged).
 * db_notify.c: local wake-ups (common/wake.h).  db_wake_setup() runs on
 * every new connection: installs db_notice() and names the channels this
 * session wakes itself (0, or -1 logged).  db_wake_settle() ends a
 * transaction's wake-ups: committed, they are posted; else dropped. */
int db_wake_setup(struct db *db);
int db_command(struct db *db, const char *sql);
void db_wake_settle(struct db *db, int committed);

#endif
