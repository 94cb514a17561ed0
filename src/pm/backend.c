/*
 * backend.c - the database backend of a worker that died in the middle of a
 * request is terminated (issue 10, defect 9).
 *
 * A worker killed while its statement waits (on a lock, say) leaves its
 * PostgreSQL backend running the transaction: nginx answers 502, and the
 * backend, which does not read its socket while it waits, commits later.
 * So that a 502 from a dead worker means nothing was committed, the master
 * has that backend terminated (pg_terminate_backend: the transaction is
 * rolled back).  The scoreboard holds each worker's backend pid.
 *
 * The master never talks to the database itself (a silent server would
 * stall the whole supervisor): a short-lived helper process does it, with
 * its own connect_timeout and an alarm() over its whole life, and the
 * master's loop reaps it like any other child.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "common/scoreboard.h"
#include "pm/master_int.h"

/* The helper gives up (SIGALRM's default action) after this long. */
#define MASTER_BACKEND_HELPER_S 10
#define MASTER_BACKEND_CONNECT_TIMEOUT "3"

/* Only a backend of our own database: a stale pid (a worker that
 * reconnected in the middle of its last request) never reaches another
 * database's session. */
static const char master_backend_sql[] =
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND datname = current_database()";

static void master_backend_helper(struct master *m, int backend_pid) __attribute__((noreturn));

static void master_backend_helper(struct master *m, int backend_pid)
{
	const char *keys[] = { "dbname", "connect_timeout", NULL };
	const char *vals[] = { m->cfg->database, MASTER_BACKEND_CONNECT_TIMEOUT, NULL };
	char pid[16];
	const char *params[1] = { pid };
	PGresult *res;
	PGconn *conn;

	master_child_init(m, SIGTERM);
	close(m->listen_fd);
	/* a fast stop kills a busy worker and may end the master before this
	 * is done: outlive it, for MASTER_BACKEND_HELPER_S at most */
	prctl(PR_SET_PDEATHSIG, 0);
	alarm(MASTER_BACKEND_HELPER_S);

	snprintf(pid, sizeof(pid), "%d", backend_pid);
	/* keys after dbname override the conninfo it expands to (PQconnectdbParams) */
	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("database backend %d of a dead worker: cannot connect to terminate it: %s",
			  backend_pid, PQerrorMessage(conn));
		PQfinish(conn);
		_exit(1);
	}
	res = PQexecParams(conn, master_backend_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		log_error("database backend %d of a dead worker: pg_terminate_backend: %s", backend_pid,
			  PQresultErrorMessage(res));
	else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		log_info("database backend %d of a dead worker terminated", backend_pid);
	else
		log_info("database backend %d of a dead worker had already ended", backend_pid);
	PQclear(res);
	PQfinish(conn);
	_exit(0);
}

void master_backend_orphan(struct master *m, const struct master_child *c)
{
	struct scoreboard_proc p;
	sigset_t set, old;
	pid_t pid;
	int saved;

	/* idle between requests: no transaction is open */
	if (scoreboard_read(c->sb, &p) < 0 || p.kind != SCOREBOARD_WORKER || p.state != SCOREBOARD_BUSY ||
	    p.backend_pid <= 0)
		return;
	log_warn("%s (pid %ld) died serving %s %s request_id %s: terminating its database backend %d",
		 c->name, (long)c->pid, p.method, p.uri, p.request_id, p.backend_pid);

	/* as in master_spawn: blocked until the child has reset its handlers */
	master_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid = fork();
	if (pid == 0)
		master_backend_helper(m, p.backend_pid);
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		log_error(
			"%s (pid %ld): fork of the backend terminator: %s; its backend %d is left to finish",
			c->name, (long)c->pid, strerror(saved), p.backend_pid);
}
