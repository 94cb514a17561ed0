/*
 * ready.c - see ready.h.
 */
#include "common/ready.h"

#include <stdlib.h>

#include "common/db_schema.h"

enum db_readiness db_readiness(struct db *db, int *version)
{
	PGresult *res = db_exec(db, DB_SCHEMA_VERSION, 0, NULL);

	if (res == NULL) {
		*version = db_schema_seen(db);
		return *version >= 0 && *version < db_schema_needed() ? DB_SCHEMA_BEHIND : DB_DOWN;
	}
	*version = atoi(PQgetvalue(res, 0, SCHEMA_VERSION_VERSION));
	PQclear(res);
	return *version >= db_schema_needed() ? DB_READY : DB_SCHEMA_BEHIND;
}
