/*
 * db_notify.c - wake-ups on a worker's or child's connection: LISTEN/NOTIFY
 * (db_listen() and db_wait_notify() in db.h), and the local wake-ups of
 * common/wake.h that replace a NOTIFY when the child runs on this host.
 */
#include "common/db_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common/pgwait.h"
#include "common/wake.h"

void db_listen(struct db *db, const char *channel)
{
	db->listen_channel = channel;
	db_disconnect(db);
}

/* Notifications already read by libpq (while a statement ran, or now):
 * consumed; 1 if any. */
static int db_take_notifies(struct db *db)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(db->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

int db_wait_notify(struct db *db, int timeout_ms)
{
	struct pollfd pfd[2];
	int c = wake_channel_of(db->listen_channel), got, rc;

	if (db_connect(db) < 0)
		return -1;
	got = db_take_notifies(db);
	if (c >= 0)
		got |= wake_take((enum wake_channel)c);
	if (got)
		return 1;
	pfd[0].fd = PQsocket(db->conn);
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	pfd[1].fd = c >= 0 ? wake_fd((enum wake_channel)c) : -1; /* -1: ignored by poll */
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	rc = poll(pfd, 2, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if ((pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) && PQconsumeInput(db->conn) == 0) {
		db_disconnect(db);
		return -1;
	}
	got = db_take_notifies(db);
	if (c >= 0)
		got |= wake_take((enum wake_channel)c);
	return got;
}

/* The notice receiver of every connection: a wake-up NOTICE of
 * sql/013_local_wake.sql marks its channel due; any other is logged. */
static void db_notice(void *arg, const PGresult *res)
{
	struct db *db = arg;
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int c;

	if (state != NULL && strcmp(state, WAKE_SQLSTATE) == 0 &&
	    (c = wake_channel_of(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY))) >= 0) {
		db->wake_due |= 1u << c;
		return;
	}
	pgwait_notice(NULL, res);
}

int db_wake_setup(struct db *db)
{
	char list[64] = "", sql[128];
	size_t n = 0;
	int c;

	db->wake_due = 0;
	PQsetNoticeReceiver(db->conn, db_notice, db);
	if (db->wake_local == 0)
		return 0;
	for (c = 0; c < WAKE_N; c++)
		if (db->wake_local & (1u << c))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? "," : "",
					      wake_channel_name((enum wake_channel)c));
	snprintf(sql, sizeof(sql), "SET callstop.wake_local = '%s'", list);
	/* the wake-ups are NOTICEs: a role whose client_min_messages hid them
	 * would leave the children to their sweep */
	return db_command(db, "SET client_min_messages = notice") < 0 || db_command(db, sql) < 0 ? -1 : 0;
}

void db_wake_settle(struct db *db, int committed)
{
	int c;

	for (c = 0; committed && c < WAKE_N; c++)
		if (db->wake_due & (1u << c))
			wake_post((enum wake_channel)c);
	db->wake_due = 0;
}
