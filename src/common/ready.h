/*
 * ready.h - is this worker ready to serve (GET /callstop-ready, the
 * callstop_database_up and callstop_schema_current metrics)?
 *
 * Its database connection answers a statement now, and the schema has every
 * migration this build needs (common/db_schema.h).
 */
#ifndef CALLSTOP_READY_H
#define CALLSTOP_READY_H

#include "common/db.h"

enum db_readiness {
	DB_READY,         /* the database answers and its schema is current */
	DB_SCHEMA_BEHIND, /* it answers, but migrations are pending */
	DB_DOWN,          /* no connection, or it does not answer */
};

/*
 * Ask the database now: a statement on the worker's connection, connecting
 * (and so checking the schema) if needed; bounded as every db_exec() is.
 * *version is the schema version seen, -1 if unknown.
 */
enum db_readiness db_readiness(struct db *db, int *version);

#endif
