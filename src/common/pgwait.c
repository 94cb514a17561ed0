/*
 * pgwait.c - see pgwait.h.
 */
#include "common/pgwait.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

/* libpq messages end in a newline; a log line must not contain one. */
void pgwait_escape(char *dst, size_t len, const char *msg)
{
	size_t n;

	log_escape(dst, len, msg);
	n = strlen(dst);
	while (n >= 4 && strcmp(dst + n - 4, "\\x0a") == 0)
		dst[n -= 4] = '\0';
}

/* NOTICE, WARNING (e.g. "terminating connection because of crash of another
 * server process") and the like, which libpq would print raw on stderr:
 * one escaped log line each (issue 10, defect 8). */
void pgwait_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char buf[512];

	(void)arg;
	pgwait_escape(buf, sizeof(buf), msg ? msg : PQresultErrorMessage(res));
	if (sev == NULL)
		sev = "NOTICE";
	if (strcmp(sev, "WARNING") == 0)
		log_warn("database: %s %s: %s", sev, state ? state : "?", buf);
	else if (strcmp(sev, "DEBUG") == 0 || strcmp(sev, "LOG") == 0)
		log_debug("database: %s %s: %s", sev, state ? state : "?", buf);
	else
		log_info("database: %s %s: %s", sev, state ? state : "?", buf);
}

/* Wait until conn's socket is ready for events or deadline (ms, monotonic)
 * passes.  Returns 1 ready, 0 timed out, -1 error. */
int pgwait_socket(PGconn *conn, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = events };
		int64_t left = deadline - clock_monotonic_ms();
		int rc;

		if (pfd.fd < 0)
			return -1;
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* Wait for input on conn until deadline; past PGWAIT_PROBE_MS of silence, and
 * then every PGWAIT_PROBE_MS, ask alive(arg) whether the server is alive at all.
 * Returns 1 input, 0 deadline passed or the server is silent, -1 error. */
static int pgwait_input(PGconn *conn, int64_t deadline, int (*alive)(void *), void *arg)
{
	int64_t probe_at = clock_monotonic_ms() + PGWAIT_PROBE_MS;

	for (;;) {
		int64_t until = probe_at < deadline ? probe_at : deadline;
		int rc = pgwait_socket(conn, POLLIN, until);

		if (rc != 0 || until == deadline || alive == NULL)
			return rc;
		if (!alive(arg))
			return 0;
		probe_at = clock_monotonic_ms() + PGWAIT_PROBE_MS;
	}
}

PGresult *pgwait_result(PGconn *conn, int64_t deadline, int (*alive)(void *), void *arg, int *timed_out)
{
	PGresult *keep = NULL, *res;
	int rc;

	*timed_out = 0;
	while ((rc = PQflush(conn)) == 1) {
		rc = pgwait_socket(conn, POLLIN | POLLOUT, deadline);
		*timed_out = rc == 0;
		if (rc <= 0 || PQconsumeInput(conn) == 0)
			return NULL;
	}
	if (rc < 0)
		return NULL;
	for (;;) {
		while (PQisBusy(conn)) {
			rc = pgwait_input(conn, deadline, alive, arg);
			if (rc == 0)
				*timed_out = 1;
			if (rc <= 0 || PQconsumeInput(conn) == 0) {
				/* the server's last word, e.g. 57P01, names the loss */
				if (rc != 0 && PQresultStatus(keep) == PGRES_FATAL_ERROR)
					return keep;
				PQclear(keep);
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			return keep;
		if (keep == NULL ||
		    (PQresultStatus(keep) != PGRES_FATAL_ERROR && PQresultStatus(res) == PGRES_FATAL_ERROR)) {
			PQclear(keep);
			keep = res;
		} else {
			PQclear(res);
		}
	}
}
