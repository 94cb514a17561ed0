/*
 * statements.h - every statement callstopd prepares, in one table
 * (statements.c), indexed by enum db_stmt of db.h; each statement's result
 * columns are named by the column enums of db.h.  Only db.c runs them.
 */
#ifndef CALLSTOP_STATEMENTS_H
#define CALLSTOP_STATEMENTS_H

#include "common/db.h"

struct db_statement {
	const char *name;
	int ncols;         /* the *_NCOLS of its column enum in db.h (0: no rows) */
	const char *sql;
};

/* Prepared on every connection (db.c), each checked against its ncols. */
extern const struct db_statement db_statements[DB_N_STMTS];

#endif
