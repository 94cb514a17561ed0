/*
 * db_schema.h - is the database's schema the one this callstopd needs?
 *
 * callstopctl migrate records each applied sql/NNN_name.sql in
 * schema_migrations (src/ctl/migrate.c); this build needs every migration it
 * ships, whose highest NNN build-aux/schema-version writes at build time into
 * CALLSTOP_SCHEMA_VERSION.  A worker checks on every (re)connection, before it
 * prepares its statements (which name what the pending migrations create): a
 * schema behind is one log line for the whole daemon and 503 for every request
 * (the connection is then treated as down and tried again DB_RETRY_MS later,
 * so that `callstopctl migrate` is picked up without a restart).  A schema
 * newer than this build is fine: an older package still runs on it.
 * GET /callstop-ready asks through common/ready.h.
 */
#ifndef CALLSTOP_DB_SCHEMA_H
#define CALLSTOP_DB_SCHEMA_H

#include <stdint.h>

#include <libpq-fe.h>

#include "common/attr.h"

/* The newest migration applied, 0 if none: read on a new connection here,
 * and as DB_SCHEMA_VERSION (common/statements.c) by GET /callstop-ready. */
#define DB_SCHEMA_VERSION_SQL "SELECT coalesce(max(version), 0) FROM schema_migrations"

/* The schema version this build needs (CALLSTOP_SCHEMA_VERSION). */
int db_schema_needed(void);

/*
 * On a new connection: read the newest applied migration (0 when none, or no
 * schema_migrations table) within deadline (CLOCK_MONOTONIC ms).  *seen is
 * the version this process saw last (-1: none yet), updated.  Returns 0 if it
 * is current, 1 if behind (the line "database schema is at N, this callstopd
 * needs M: run `callstopctl migrate`" logged by the first process to see N),
 * -1 if the query failed (logged).
 */
int db_schema_check(PGconn *conn, int64_t deadline, int *seen) MUST_CHECK;

#endif
