/*
 * ctl.h - what callstopctl.c and ctl_demo.c share: error reporting in the
 * one format of callstopctl(8), thin libpq helpers, tenants, randomness.
 *
 * Every error is reported once, by the function that knows the command and
 * the cause, as one line "callstopctl: <command>: <what went wrong>" on
 * stderr; callers only pass -1 / NULL up.
 */
#ifndef CALLSTOP_CTL_H
#define CALLSTOP_CTL_H

#include <stddef.h>

#include <libpq-fe.h>

#define CTL_PROG "callstopctl"

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

/*
 * Connect for cmd: -d wins; else the database of the config file (-c, or
 * CONF_DEFAULT_PATH if it exists); else libpq's environment defaults.
 * Server warnings are then reported on stderr as one line each and notices
 * dropped.  Returns the connection (PQfinish() it), or NULL (reported).
 */
PGconn *ctl_connect(const char *cmd, const struct ctl_global *g);

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

/*
 * PQexecParams with text parameters (NULL entries are SQL NULLs) and text
 * results.  Returns the result when it has the status the statement implies
 * (tuples or command OK); otherwise reports it with ctl_db_error() and
 * returns NULL.  The caller PQclear()s the result.
 */
PGresult *ctl_exec(const char *cmd, PGconn *conn, const char *sql, int nparams, const char *const *params);

/* Run a statement that returns nothing of interest (BEGIN, COMMIT).
 * Returns 0 or -1 (reported). */
int ctl_command(const char *cmd, PGconn *conn, const char *sql);

/* ROLLBACK after an error that has already been reported; a failure of the
 * rollback itself is not worth a second message (the connection is closed
 * right after, which rolls back anyway). */
void ctl_rollback(PGconn *conn);

/*
 * Find the tenant called name, creating it with workspace_id if it does not
 * exist.  Writes its id (decimal) into id (idlen bytes) and sets *created.
 * Returns 0, or -1 (reported; a workspace id used by another tenant included).
 */
int ctl_tenant_ensure(const char *cmd, PGconn *conn, const char *name, const char *workspace_id, char *id,
		      size_t idlen, int *created);

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

/*
 * Report what getopt_long() returned for a bad option ('?' or ':').  The
 * option strings must start with ':' and opterr be 0, so that the message
 * has our format.
 */
void ctl_getopt_error(const char *cmd, int c, char *const *argv);

/* callstopctl demo ... (argv[0] is "demo").  Returns a ctl_exit code. */
int ctl_demo(const struct ctl_global *g, int argc, char **argv);

#endif
