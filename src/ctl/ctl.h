/*
 * ctl.h - what the command files of callstopctl share: error reporting in the
 * one format of callstopctl(8), thin libpq helpers over the statement table
 * of stmt.h, option parsing, tables, randomness (util.c), and each file's
 * entry points.
 *
 *   main.c     global options, usage, the command table
 *   util.c     errors, connection, statements, tables, options, randomness
 *   stmt.c     every SQL statement (stmt.h)
 *   migrate.c  migrate, and the schema checks check shares
 *   tenant.c   tenant add|list
 *   key.c      key and admin-token create|list|revoke (one token code)
 *   outbox.c   outbox list|retry
 *   webhook.c  webhook add|list|remove|rotate-secret|test|deliveries|replay
 *   check.c    check
 *   demo.c     demo (for trying callstop, not for production)
 *
 * Every error is reported once, by the function that knows the command and
 * the cause, as one line "callstopctl: <command>: <what went wrong>" on
 * stderr; callers only pass -1 / NULL up.
 */
#ifndef CALLSTOP_CTL_H
#define CALLSTOP_CTL_H

#include <stddef.h>

#include <libpq-fe.h>

#include "ctl/stmt.h"

#define CTL_PROG "callstopctl"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/callstop"
#endif
/* Where migrate and check look for NNN_name.sql unless given --dir. */
#define CTL_SQL_DIR PKGDATADIR "/sql"

/* Exit codes of callstopctl(8). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_ERROR = 1,
	CTL_EXIT_USAGE = 2,
};

/* Longest tenant workspace id or key frontend id: callstopd copies them into
 * fixed buffers of this size + 1 (struct auth_identity). */
#define CTL_ID_MAX 128

/* The global options, as given on the command line (not owned). */
struct ctl_global {
	const char *config_path; /* -c, or NULL */
	const char *conninfo;    /* -d, or NULL */
};

struct conf;

/* ---- util.c: connection ------------------------------------------------- */

/*
 * Connect for cmd: -d wins; else the database of the config file (-c, or
 * CONF_DEFAULT_PATH if it exists); else libpq's environment defaults.
 * Server warnings are then reported on stderr as one line each and notices
 * dropped.  Returns the connection (PQfinish() it), or NULL (reported).
 */
PGconn *ctl_connect(const char *cmd, const struct ctl_global *g);

/* Connect for cmd to conninfo (NULL: libpq's environment defaults), as
 * ctl_connect() does once it has chosen.  Returns the connection or NULL
 * (reported). */
PGconn *ctl_connect_to(const char *cmd, const char *conninfo);

/* Load the config file of g (-c, else $CALLSTOP_CONF, else the default path
 * if it exists).  Returns 0 with *conf set (conf_free() it; NULL when there
 * is no file to read), or -1 (reported). */
int ctl_load_config(const char *cmd, const struct ctl_global *g, struct conf **conf);

/* ---- util.c: errors and statements -------------------------------------- */

/* "callstopctl: <cmd>: <message>\n" on stderr. */
void ctl_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Report a failed statement: what (may be NULL) followed by the server's
 * primary message and detail, folded onto one line.  res may be NULL when
 * libpq could not even send the query; the connection's message is used.
 */
void ctl_db_error(const char *cmd, PGconn *conn, const PGresult *res, const char *what);

/* 1 if res failed with this SQLSTATE ("23505"), else 0. */
int ctl_sqlstate_is(const PGresult *res, const char *sqlstate);

/* 1 if res (may be NULL) holds tuples or a command's success, else 0. */
int ctl_result_ok(const PGresult *res);

/* Append text to dst (dstlen bytes, always NUL-terminated, truncated if
 * need be). */
void ctl_append(char *dst, size_t dstlen, const char *text);

/*
 * Run stmt with text parameters (NULL entries are SQL NULLs) and text
 * results.  Returns the result when it has the status the statement implies
 * (tuples or command OK); otherwise reports it with ctl_db_error() and
 * returns NULL.  The caller PQclear()s the result.
 */
PGresult *ctl_exec(const char *cmd, PGconn *conn, enum ctl_stmt stmt, int nparams, const char *const *params);

/* Run a statement that returns nothing of interest (CTL_BEGIN, CTL_COMMIT).
 * Returns 0 or -1 (reported). */
int ctl_command(const char *cmd, PGconn *conn, enum ctl_stmt stmt);

/* ROLLBACK after an error that has already been reported; a failure of the
 * rollback itself is not worth a second message (the connection is closed
 * right after, which rolls back anyway). */
void ctl_rollback(PGconn *conn);

/*
 * The number of the result column called name (as stmt.h lists it).  A
 * column the statement does not return is a bug in stmt.c, not a runtime
 * condition: it aborts, saying which.  Look it up once before a loop over
 * rows.
 */
int ctl_column(const PGresult *res, const char *name);

/* The text of column name of row (ctl_column()); "" for SQL NULL, as
 * PQgetvalue() gives it. */
const char *ctl_value(const PGresult *res, int row, const char *name);

/* Print res as aligned columns under its column names (numbers right-aligned,
 * NULL as "-") on stdout; after ctl_output_json(1) (--json), as one JSON array
 * of objects keyed by column name instead (integers as numbers, NULL as
 * null, the rest as strings), for scripts. */
void ctl_print_table(const PGresult *res);
void ctl_output_json(int on);

/* ---- util.c: options and subcommands ------------------------------------ */

/* A command's subcommands, e.g. "key create". */
struct ctl_sub {
	const char *name;
	int (*fn)(const struct ctl_global *g, int argc, char **argv);
};

/* Run the subcommand argv[1] of group from subs (a usage error if there is
 * none or it is unknown); expected lists their names for the message.
 * Returns a ctl_exit code. */
int ctl_subcommand(const char *group, const char *expected, const struct ctl_sub *subs, size_t n,
		   const struct ctl_global *g, int argc, char **argv);

/*
 * Parse the one option "--name VALUE" a command takes; *value keeps its
 * default when the option is absent.  Returns the index of the first operand
 * in argv, or -1 after reporting a usage error.
 */
int ctl_one_option(const char *cmd, const char *name, const char **value, int argc, char **argv);

/* Operands at argv[first..] of a command that takes none (first < 0: the
 * option parse already failed).  Returns 0, or -1 after reporting. */
int ctl_no_operands(const char *cmd, int first, int argc, char **argv);

/* A listing command without arguments: run the listing stmt and print it as
 * a table.  Returns a ctl_exit code. */
int ctl_list(const char *cmd, enum ctl_stmt stmt, const struct ctl_global *g, int argc, char **argv);

/* ---- tenant.c ----------------------------------------------------------- */

/*
 * Find the tenant called name, creating it with workspace_id if it does not
 * exist.  Writes its id (decimal) into id (idlen bytes) and sets *created.
 * Returns 0, or -1 (reported; a workspace id used by another tenant included).
 */
int ctl_tenant_ensure(const char *cmd, PGconn *conn, const char *name, const char *workspace_id, char *id,
		      size_t idlen, int *created);

/* Workspace and frontend ids travel in HTTP headers and are copied into
 * fixed buffers by callstopd: visible ASCII, 1..CTL_ID_MAX bytes.  what
 * names it in the error ("workspace id").  Returns 0, or -1 (reported). */
int ctl_check_id(const char *cmd, const char *what, const char *s);

/* The id of the tenant called name into id (idlen bytes).  Returns 0, or -1
 * (reported, "no tenant named" included). */
int ctl_tenant_id(const char *cmd, PGconn *conn, const char *name, char *id, size_t idlen);

/* ---- util.c: randomness ------------------------------------------------- */

/* n random characters of alphabet (rejection sampling, no modulo bias) and
 * a NUL into out (n + 1 bytes).  Returns 0, or -1 if the CSPRNG fails. */
int ctl_random_chars(char *out, size_t n, const char *alphabet);

/* nbytes random bytes as 2 * nbytes lower-case hex digits and a NUL into out.
 * Returns 0, or -1 if the CSPRNG fails. */
int ctl_random_hex(char *out, size_t nbytes);

/* Parse a decimal integer option value in min..max into *out.  Returns 0, or
 * -1 after reporting "--name: expected an integer min..max, got 'x'". */
int ctl_parse_int(const char *cmd, const char *name, const char *s, long long min, long long max,
		  long long *out);

/* An option value that must be one of choices (NULL-terminated).  Returns 0,
 * or -1 after reporting "--name: expected a, b or c, got 'x'". */
int ctl_parse_choice(const char *cmd, const char *name, const char *s, const char *const *choices);

/*
 * Report what getopt_long() returned for a bad option ('?' or ':').  The
 * option strings must start with ':' and opterr be 0, so that the message
 * has our format.
 */
void ctl_getopt_error(const char *cmd, int c, char *const *argv);

/* ---- migrate.c: the migrations of a directory ---------------------------- */

struct ctl_migration {
	int version;
	char *name; /* "001_schema.sql" (owned) */
};

struct ctl_migrations {
	struct ctl_migration *v; /* sorted by version */
	size_t n;
};

/* The migration files of dir, sorted by version.  Returns 0 (at least one),
 * or -1 (reported: unreadable dir, no migrations, two files of one version). */
int ctl_migrations_scan(const char *cmd, const char *dir, struct ctl_migrations *m);
void ctl_migrations_free(struct ctl_migrations *m);

/* The newest applied version into *version (0: none; -1: no
 * schema_migrations table).  Returns 0 or -1 (reported). */
int ctl_schema_version(const char *cmd, PGconn *conn, int *version);

/* The number of files of m not recorded in schema_migrations, into *missing;
 * the first of them into *first (a name in m).  Returns 0 or -1 (reported). */
int ctl_migrations_missing(const char *cmd, PGconn *conn, const struct ctl_migrations *m, size_t *missing,
			   const char **first);

/* ---- The commands: argv[0] is the command's name; each returns a ctl_exit
 * code and reports its own errors. ---------------------------------------- */

int ctl_cmd_migrate(const struct ctl_global *g, int argc, char **argv);     /* migrate.c */
int ctl_cmd_tenant(const struct ctl_global *g, int argc, char **argv);      /* tenant.c */
int ctl_cmd_key(const struct ctl_global *g, int argc, char **argv);         /* key.c */
int ctl_cmd_admin_token(const struct ctl_global *g, int argc, char **argv); /* key.c */
int ctl_cmd_outbox(const struct ctl_global *g, int argc, char **argv);      /* outbox.c */
int ctl_cmd_check(const struct ctl_global *g, int argc, char **argv);       /* check.c */
int ctl_cmd_webhook(const struct ctl_global *g, int argc, char **argv);     /* webhook.c */
int ctl_demo(const struct ctl_global *g, int argc, char **argv);            /* demo.c */
int ctl_cmd_suppression(const struct ctl_global *g, int argc, char **argv); /* suppression.c */

#endif
