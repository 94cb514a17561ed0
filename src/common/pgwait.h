/*
 * pgwait.h - waiting on libpq with a deadline, and its notices in the log.
 *
 * libpq's blocking calls (PQexec*, PQprepare) wait as long as the server says
 * nothing, which for a stopped or unreachable server is forever (issue 10,
 * defect 2).  These helpers drive libpq's asynchronous API instead, so that
 * common/db.c can bound every wait.  Times are CLOCK_MONOTONIC milliseconds
 * (common/clock.h).
 */
#ifndef CALLSTOP_PGWAIT_H
#define CALLSTOP_PGWAIT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* After this long (ms) without an answer, and then every as long, the
 * server is asked whether it is alive (the alive() of pgwait_result()). */
#define PGWAIT_PROBE_MS 1000

/* Wait until conn's socket is ready for events (POLLIN, POLLOUT) or deadline
 * passes; signals do not end the wait.  Returns 1 ready, 0 timed out, -1
 * error (no socket, poll failed). */
int pgwait_socket(PGconn *conn, short events, int64_t deadline);

/*
 * Collect the result of what was just sent on conn (PQsend*), up to
 * ReadyForQuery: an autocommit statement commits at its Sync, after its
 * rows.  While no input comes, alive(arg) (may be NULL) is asked every
 * PGWAIT_PROBE_MS; 0 from it ends the wait as the deadline does.
 * Returns the first error result, else the first result, which the caller
 * PQclear()s; NULL if the deadline passed or alive() said no (*timed_out
 * set) or the connection failed before an error result told why: either
 * way the connection is lost and the outcome unknown.
 */
PGresult *pgwait_result(PGconn *conn, int64_t deadline, int (*alive)(void *), void *arg, int *timed_out);

/* log_escape() a libpq message into dst (len bytes), trailing newlines
 * removed: one log line. */
void pgwait_escape(char *dst, size_t len, const char *msg);

/* A PQnoticeReceiver (arg unused): one log line per NOTICE, WARNING... at
 * the matching level, "database: WARNING 01000: message", escaped. */
void pgwait_notice(void *arg, const PGresult *res);

#endif
