/*
 * db_notify.c - LISTEN/NOTIFY on a worker's or child's connection (see
 * db_listen() and db_wait_notify() in db.h).
 */
#include "common/db_int.h"

#include <errno.h>
#include <poll.h>

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
	/* received while a statement ran: already read, poll would not see it */
	while ((n = PQnotifies(db->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	if (got)
		return 1;
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
