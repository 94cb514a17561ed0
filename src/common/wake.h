/*
 * wake.h - local wake-ups: callstopd's processes wake the retry child (SPEC
 * 6, 11) and the delivery child (SPEC 9) of their own host themselves, right
 * after the commit that queued work for them, instead of by a PostgreSQL
 * NOTIFY inside that transaction.
 *
 * Why: PostgreSQL serialises the commits of notifying transactions.  From
 * its pre-commit until its commit record is flushed, a transaction that
 * issued NOTIFY holds one database-wide lock (PreCommit_Notify in
 * src/backend/commands/async.c), so durable cancels that each NOTIFY flush
 * one after another instead of sharing a flush (group commit), and each
 * notification also wakes every listening backend.
 *
 * How: the master opens one pipe per channel before its first fork
 * (wake_open()); every process it forks inherits both ends.  A callstopd
 * database session names the channels whose child runs on this host in
 * callstop.wake_local (db.c, when it connects); for those, the queueing
 * triggers raise a NOTICE (SQLSTATE WAKE_SQLSTATE, the channel as its
 * message) instead of a NOTIFY (sql/013_local_wake.sql).  db.c gathers them
 * during a transaction and calls wake_post() once it has committed (nothing
 * for a rollback).  A child polls its channel's read end beside its
 * database socket (db_wait_notify()).  Everyone else - psql, the dialers,
 * callstopctl, and a callstopd whose delivery child is off - still NOTIFYs,
 * and the children still LISTEN; their sweep (poll_ms) still finds whatever
 * a lost wake-up left behind: a wake-up only ever saves time.
 */
#ifndef CALLSTOP_WAKE_H
#define CALLSTOP_WAKE_H

/* The channels; their names are the LISTEN/NOTIFY channels of sql/. */
enum wake_channel {
	WAKE_OUTBOX,  /* "callstop_outbox": the retry child */
	WAKE_WEBHOOK, /* "callstop_webhook": the delivery child */
	WAKE_N
};

/* The SQLSTATE of the NOTICE that stands for a wake-up
 * (sql/013_local_wake.sql: callstop_wake()). */
#define WAKE_SQLSTATE "WK001"

/* The master, once, before its first fork: open the pipes (non-blocking,
 * close-on-exec).  0, or -1 with errno set (then no process wakes another:
 * every session NOTIFYs as before). */
int wake_open(void);

/* The channel named name ("callstop_outbox", ...), or -1. */
int wake_channel_of(const char *name);

/* The name of channel c, a constant string. */
const char *wake_channel_name(enum wake_channel c);

/* 1 if channel c has a pipe (wake_open() ran in this process or its
 * master), else 0. */
int wake_ready(enum wake_channel c);

/* Wake channel c's children on this host: one byte into its pipe.  Never
 * blocks: a full pipe already holds a wake-up that has not been taken. */
void wake_post(enum wake_channel c);

/* The read end of channel c's pipe, to poll for POLLIN; -1 if none. */
int wake_fd(enum wake_channel c);

/* Take every pending wake-up of channel c: 1 if there was one, else 0. */
int wake_take(enum wake_channel c);

#endif
