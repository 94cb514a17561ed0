/*
 * db_schema.c - see db_schema.h.
 */
#include "common/db_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pgwait.h"
#include "common/scoreboard.h"
#include "common/schema_version.h"

int db_schema_needed(void)
{
	return CALLSTOP_SCHEMA_VERSION;
}

int db_schema_check(PGconn *conn, int64_t deadline, int *seen)
{
	const char *state;
	PGresult *res = NULL;
	int timed_out = 0, version, previous = *seen;

	/* not prepared: the statements are prepared only once the schema is
	 * known to be current.  42P01 (undefined table): never migrated. */
	if (PQsendQueryParams(conn, DB_SCHEMA_VERSION_SQL, 0, NULL, NULL, NULL, NULL, 0))
		res = pgwait_result(conn, deadline, NULL, NULL, &timed_out);
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		version = atoi(PQgetvalue(res, 0, 0));
	else if (state != NULL && strcmp(state, "42P01") == 0)
		version = 0;
	else {
		char msg[256];

		pgwait_escape(msg, sizeof(msg), timed_out ? "no answer in time" : PQerrorMessage(conn));
		log_error("database: cannot read the schema version: %s", msg);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	*seen = version;
	if (version < CALLSTOP_SCHEMA_VERSION) {
		if (version != previous && scoreboard_note_schema(version))
			log_error(
				"database schema is at %d, this callstopd needs %d: run `callstopctl migrate`",
				version, CALLSTOP_SCHEMA_VERSION);
		return 1;
	}
	if (previous >= 0 && previous < CALLSTOP_SCHEMA_VERSION && scoreboard_note_schema(version))
		log_info("database schema is at %d, as this callstopd needs: serving again", version);
	return 0;
}
