/*
 * callstopctl - the admin CLI of callstop: schema migrations, tenants, API
 * keys, demo data and a health check (callstopctl(8)).
 *
 * Every command parses its arguments before it connects, so a usage error
 * never waits for the database.  Values reach PostgreSQL only as statement
 * parameters.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/auth.h"
#include "common/conf.h"
#include "ctl/ctl.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/callstop"
#endif
#define CTL_SQL_DIR PKGDATADIR "/sql"

/* Any constant both migrates agree on; "callstop" in ASCII. */
#define CTL_MIGRATE_LOCK "7161124095545077616"

/* Seconds libpq may take to connect unless the conninfo or PGCONNECT_TIMEOUT
 * says otherwise: an unreachable host must not hang `check` for minutes. */
#define CTL_CONNECT_TIMEOUT "10"

/* Times in listings: RFC 3339 UTC, like the API. */
#define CTL_RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* int8, int4, int2: right-aligned in tables. */
#define CTL_OID_INT8 20
#define CTL_OID_INT2 21
#define CTL_OID_INT4 23

/* ------------------------------------------------------------------------ */
/* Errors */

void ctl_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", CTL_PROG, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Append text to dst (dstlen bytes, always NUL-terminated, truncated if
 * need be). */
static void ctl_append(char *dst, size_t dstlen, const char *text)
{
	size_t n = strlen(dst);

	snprintf(dst + n, dstlen - n, "%s", text);
}

/* Append at most len bytes of src to dst with every run of whitespace folded
 * into one space and the ends trimmed: server and libpq messages span lines,
 * our error lines must not. */
static void ctl_fold(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t n = strlen(dst), i;
	int space = 0, any = 0;

	for (i = 0; i < len && src[i] != '\0' && n + 1 < dstlen; i++) {
		if (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
			space = any;
			continue;
		}
		if (space && n + 2 < dstlen)
			dst[n++] = ' ';
		space = 0;
		any = 1;
		dst[n++] = src[i];
	}
	dst[n] = '\0';
}

/* Append "; label: text" when the server sent that field.  Only the first
 * line of a CONTEXT: the innermost frame is the one that says where. */
static void ctl_append_field(char *dst, size_t dstlen, const PGresult *res, int field, const char *label)
{
	const char *text = PQresultErrorField(res, field);
	size_t len;

	if (text == NULL || *text == '\0')
		return;
	len = field == PG_DIAG_CONTEXT ? strcspn(text, "\n") : strlen(text);
	ctl_append(dst, dstlen, "; ");
	ctl_append(dst, dstlen, label);
	ctl_append(dst, dstlen, ": ");
	ctl_fold(dst, dstlen, text, len);
}

void ctl_db_error(const char *cmd, PGconn *conn, const PGresult *res, const char *what)
{
	char msg[2048] = "";
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (what != NULL) {
		ctl_append(msg, sizeof(msg), what);
		ctl_append(msg, sizeof(msg), ": ");
	}
	if (primary != NULL) {
		ctl_fold(msg, sizeof(msg), primary, strlen(primary));
		ctl_append_field(msg, sizeof(msg), res, PG_DIAG_MESSAGE_DETAIL, "detail");
		ctl_append_field(msg, sizeof(msg), res, PG_DIAG_MESSAGE_HINT, "hint");
		ctl_append_field(msg, sizeof(msg), res, PG_DIAG_CONTEXT, "context");
		/* undefined_table, undefined_function: the usual cause is a
		 * database that was never migrated. */
		if (ctl_sqlstate_is(res, "42P01") || ctl_sqlstate_is(res, "42883"))
			ctl_append(msg, sizeof(msg), " (is the schema migrated? see " CTL_PROG " check)");
	} else {
		/* No result, or one libpq made up (lost connection): its text is
		 * in the connection. */
		const char *text = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn);

		ctl_fold(msg, sizeof(msg), text, strlen(text));
	}
	ctl_error(cmd, "%s", msg);
}

int ctl_sqlstate_is(const PGresult *res, const char *sqlstate)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s != NULL && strcmp(s, sqlstate) == 0;
}

static int ctl_result_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

PGresult *ctl_exec(const char *cmd, PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (ctl_result_ok(res))
		return res;
	ctl_db_error(cmd, conn, res, NULL);
	PQclear(res);
	return NULL;
}

int ctl_command(const char *cmd, PGconn *conn, const char *sql)
{
	PGresult *res = ctl_exec(cmd, conn, sql, 0, NULL);

	PQclear(res);
	return res ? 0 : -1;
}

void ctl_rollback(PGconn *conn)
{
	PQclear(PQexec(conn, "ROLLBACK"));
}

void ctl_getopt_error(const char *cmd, int c, char *const *argv)
{
	const char *opt = argv[optind - 1];

	if (c == ':')
		ctl_error(cmd, "option %s needs a value (see %s --help)", opt, CTL_PROG);
	else if (optopt != 0)
		ctl_error(cmd, "unknown option -%c (see %s --help)", optopt, CTL_PROG);
	else
		ctl_error(cmd, "unknown option %s (see %s --help)", opt, CTL_PROG);
}

int ctl_parse_int(const char *cmd, const char *name, const char *s, long long min, long long max,
		  long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		ctl_error(cmd, "%s: expected an integer %lld..%lld, got '%s'", name, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Randomness */

int ctl_random_chars(char *out, size_t n, const char *alphabet)
{
	size_t alen = strlen(alphabet), i = 0, j;
	/* Accept only bytes below the largest multiple of alen, so that every
	 * character is equally likely. */
	unsigned limit = 256 - 256 % alen;
	unsigned char buf[64];

	while (i < n) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return -1;
		for (j = 0; j < sizeof(buf) && i < n; j++)
			if (buf[j] < limit)
				out[i++] = alphabet[buf[j] % alen];
	}
	out[n] = '\0';
	return 0;
}

int ctl_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b;
	size_t i;

	for (i = 0; i < nbytes; i++) {
		if (RAND_bytes(&b, 1) != 1)
			return -1;
		out[2 * i] = hex[b >> 4];
		out[2 * i + 1] = hex[b & 0xf];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Connection */

/* Server warnings matter to an operator (a migration may RAISE WARNING);
 * notices ("relation already exists, skipping") are noise. */
static void ctl_notice_receiver(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char msg[1024] = "";

	if (severity == NULL || strcmp(severity, "WARNING") != 0 || primary == NULL)
		return;
	ctl_fold(msg, sizeof(msg), primary, strlen(primary));
	ctl_error((const char *)arg, "server warning: %s", msg);
}

/* The config file to read when no -c is given: $CALLSTOP_CONF (as callstopd
 * reads it), else the default path if it exists, else NULL. */
static const char *ctl_default_config(void)
{
	const char *env = getenv("CALLSTOP_CONF");

	if (env != NULL && *env != '\0')
		return env;
	return access(CONF_DEFAULT_PATH, F_OK) == 0 ? CONF_DEFAULT_PATH : NULL;
}

/* Load the config file of g (or the default one).  Returns 0 with *conf set
 * (NULL when there is no file to read), or -1 (reported). */
static int ctl_load_config(const char *cmd, const struct ctl_global *g, struct conf **conf)
{
	const char *path = g->config_path ? g->config_path : ctl_default_config();
	char err[1024];

	*conf = NULL;
	if (path == NULL)
		return 0;
	*conf = conf_load(path, err, sizeof(err));
	if (*conf == NULL) {
		ctl_error(cmd, "%s", err);
		return -1;
	}
	return 0;
}

static PGconn *ctl_connect_to(const char *cmd, const char *conninfo)
{
	/* Later keywords win, and a conninfo string in dbname is expanded in
	 * place: the conninfo overrides our defaults. */
	const char *keys[4] = { "fallback_application_name", NULL, NULL, NULL };
	const char *vals[4] = { CTL_PROG, NULL, NULL, NULL };
	int n = 1;
	PGconn *conn;

	if (getenv("PGCONNECT_TIMEOUT") == NULL) {
		keys[n] = "connect_timeout";
		vals[n++] = CTL_CONNECT_TIMEOUT;
	}
	keys[n] = "dbname";
	vals[n] = conninfo ? conninfo : "";
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		ctl_error(cmd, "cannot connect to the database: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *text = PQerrorMessage(conn);
		char msg[1024] = "";

		ctl_fold(msg, sizeof(msg), text, strlen(text));
		ctl_error(cmd, "cannot connect to the database: %s", msg);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, ctl_notice_receiver, (void *)cmd);
	return conn;
}

PGconn *ctl_connect(const char *cmd, const struct ctl_global *g)
{
	struct conf *conf = NULL;
	PGconn *conn;

	if (g->conninfo != NULL)
		return ctl_connect_to(cmd, g->conninfo);
	if (ctl_load_config(cmd, g, &conf) < 0)
		return NULL;
	conn = ctl_connect_to(cmd, conf ? conf->database : NULL);
	conf_free(conf);
	return conn;
}

/* ------------------------------------------------------------------------ */
/* Output */

static int ctl_column_numeric(const PGresult *res, int col)
{
	Oid t = PQftype(res, col);

	return t == CTL_OID_INT8 || t == CTL_OID_INT4 || t == CTL_OID_INT2;
}

/* Print res as aligned columns under its column names; NULL as "-". */
static void ctl_print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res), r, c;
	int *width = calloc((size_t)cols, sizeof(*width));

	if (width == NULL) {
		ctl_error("output", "out of memory");
		return;
	}
	for (c = 0; c < cols; c++) {
		width[c] = (int)strlen(PQfname(res, c));
		for (r = 0; r < rows; r++)
			if (PQgetlength(res, r, c) > width[c])
				width[c] = PQgetlength(res, r, c);
	}
	for (r = -1; r < rows; r++) {
		for (c = 0; c < cols; c++) {
			const char *v = r < 0 ? PQfname(res, c) : PQgetisnull(res, r, c) ? "-" : PQgetvalue(res, r, c);
			int last = c == cols - 1;

			if (ctl_column_numeric(res, c))
				printf("%*s%s", width[c], v, last ? "" : "  ");
			else
				printf("%-*s%s", last ? 0 : width[c], v, last ? "" : "  ");
		}
		putchar('\n');
	}
	free(width);
}

/* ------------------------------------------------------------------------ */
/* Migrations */

struct ctl_migration {
	int version;
	char *name; /* "001_schema.sql" (owned) */
};

struct ctl_migrations {
	struct ctl_migration *v;
	size_t n;
};

static void ctl_migrations_free(struct ctl_migrations *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->v[i].name);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* The version of a migration file name "NNN_name.sql", or -1 if name is not
 * one (editor backups, READMEs). */
static int ctl_migration_version(const char *name)
{
	size_t digits = strspn(name, "0123456789"), len = strlen(name);
	long v;

	if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 6
	    || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	v = strtol(name, NULL, 10);
	return v > 0 ? (int)v : -1;
}

static int ctl_migration_cmp(const void *a, const void *b)
{
	const struct ctl_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* The migration files of dir, sorted by version.  Returns 0, or -1
 * (reported: unreadable dir, no migrations, two files of one version). */
static int ctl_migrations_scan(const char *cmd, const char *dir, struct ctl_migrations *m)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0, i;

	m->v = NULL;
	m->n = 0;
	if (d == NULL) {
		ctl_error(cmd, "cannot read migrations directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int version = ctl_migration_version(de->d_name);

		if (version < 0)
			continue;
		if (m->n == cap) {
			struct ctl_migration *nv = realloc(m->v, (cap ? cap * 2 : 16) * sizeof(*nv));

			if (nv == NULL)
				goto nomem;
			m->v = nv;
			cap = cap ? cap * 2 : 16;
		}
		m->v[m->n].name = strdup(de->d_name);
		if (m->v[m->n].name == NULL)
			goto nomem;
		m->v[m->n++].version = version;
	}
	closedir(d);
	if (m->n == 0) {
		ctl_error(cmd, "no migrations (NNN_name.sql) in %s", dir);
		return -1;
	}
	qsort(m->v, m->n, sizeof(*m->v), ctl_migration_cmp);
	for (i = 1; i < m->n; i++) {
		if (m->v[i].version == m->v[i - 1].version) {
			ctl_error(cmd, "%s and %s in %s have the same version", m->v[i - 1].name, m->v[i].name, dir);
			ctl_migrations_free(m);
			return -1;
		}
	}
	return 0;
nomem:
	closedir(d);
	ctl_migrations_free(m);
	ctl_error(cmd, "out of memory");
	return -1;
}

/* The whole file at dir/name, NUL-terminated (free it), or NULL (reported). */
static char *ctl_read_file(const char *cmd, const char *dir, const char *name)
{
	char path[PATH_MAX];
	char *buf = NULL;
	long size;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		ctl_error(cmd, "%s/%s: path too long", dir, name);
		return NULL;
	}
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	buf = malloc((size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	buf[size] = '\0';
	fclose(f);
	return buf;
fail:
	ctl_error(cmd, "cannot read %s: %s", path, errno ? strerror(errno) : "short read");
	free(buf);
	if (f != NULL)
		fclose(f);
	return NULL;
}

/* Line (1-based) of the character at 1-based position pos of a UTF-8 text:
 * the server counts characters, not bytes. */
static long ctl_line_of(const char *text, long pos)
{
	long line = 1, chars = 0;

	for (; *text != '\0' && chars < pos - 1; text++) {
		if (((unsigned char)*text & 0xc0) != 0x80)
			chars++;
		if (*text == '\n')
			line++;
	}
	return line;
}

/* Report a failed migration file, with the line of the error when the server
 * gives its position. */
static void ctl_migration_error(const char *cmd, PGconn *conn, const PGresult *res, const char *name,
				const char *sql)
{
	const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	char what[PATH_MAX + 32];

	if (pos != NULL)
		snprintf(what, sizeof(what), "%s: line %ld", name, ctl_line_of(sql, atol(pos)));
	else
		snprintf(what, sizeof(what), "%s", name);
	ctl_db_error(cmd, conn, res, what);
}

/* Serialises migrates for the rest of the transaction. */
static int ctl_migrate_lock(const char *cmd, PGconn *conn)
{
	const char *params[1] = { CTL_MIGRATE_LOCK };
	PGresult *res = ctl_exec(cmd, conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, params);

	PQclear(res);
	return res ? 0 : -1;
}

static int ctl_migrate_prepare(const char *cmd, PGconn *conn)
{
	if (ctl_command(cmd, conn, "BEGIN") < 0)
		return -1;
	if (ctl_migrate_lock(cmd, conn) < 0
	    || ctl_command(cmd, conn,
			   "CREATE TABLE IF NOT EXISTS schema_migrations ("
			   " version integer PRIMARY KEY,"
			   " name text NOT NULL,"
			   " applied_at timestamptz NOT NULL DEFAULT now())") < 0
	    || ctl_command(cmd, conn, "COMMIT") < 0) {
		ctl_rollback(conn);
		return -1;
	}
	return 0;
}

/*
 * Decide, under the lock, whether m is still to be applied: 1 yes, 0 no
 * (another migrate did it meanwhile), -1 error (reported; refusing a file
 * older than the newest applied one, which was written against a schema
 * that no longer exists).
 */
static int ctl_migration_pending(const char *cmd, PGconn *conn, const struct ctl_migration *m)
{
	char version[16];
	const char *params[1] = { version };
	PGresult *res;
	int applied, newest, rc;

	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_exec(cmd, conn,
		       "SELECT count(*) FILTER (WHERE version = $1::integer), coalesce(max(version), 0)"
		       " FROM schema_migrations",
		       1, params);
	if (res == NULL)
		return -1;
	applied = atoi(PQgetvalue(res, 0, 0));
	newest = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (applied)
		rc = 0;
	else if (newest > m->version) {
		ctl_error(cmd, "%s is not applied but the schema is at version %d; refusing to apply it out of order",
			  m->name, newest);
		rc = -1;
	} else
		rc = 1;
	return rc;
}

/* Apply one file in its own transaction.  Returns 1 applied, 0 already
 * applied, -1 error (reported, rolled back). */
static int ctl_migration_apply(const char *cmd, PGconn *conn, const char *dir, const struct ctl_migration *m)
{
	char version[16];
	const char *params[2] = { version, m->name };
	PGresult *res;
	char *sql;
	int rc;

	if (ctl_command(cmd, conn, "BEGIN") < 0)
		return -1;
	if (ctl_migrate_lock(cmd, conn) < 0 || (rc = ctl_migration_pending(cmd, conn, m)) < 0)
		goto fail;
	if (rc == 0) {
		ctl_rollback(conn);
		return 0;
	}
	sql = ctl_read_file(cmd, dir, m->name);
	if (sql == NULL)
		goto fail;
	/* PQexec, not PQexecParams: a file holds many statements. */
	res = PQexec(conn, sql);
	if (!ctl_result_ok(res)) {
		ctl_migration_error(cmd, conn, res, m->name, sql);
		PQclear(res);
		free(sql);
		goto fail;
	}
	PQclear(res);
	free(sql);
	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_exec(cmd, conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (ctl_command(cmd, conn, "COMMIT") < 0)
		goto fail;
	return 1;
fail:
	ctl_rollback(conn);
	return -1;
}

/* The newest applied version into *version (0: none; -1: no
 * schema_migrations table).  Returns 0 or -1 (reported). */
static int ctl_schema_version(const char *cmd, PGconn *conn, int *version)
{
	PGresult *res = ctl_exec(cmd, conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL);
	int exists;

	if (res == NULL)
		return -1;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	*version = -1;
	if (!exists)
		return 0;
	res = ctl_exec(cmd, conn, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
	if (res == NULL)
		return -1;
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* The number of files of m not recorded in schema_migrations, into *missing;
 * the first of them into *first.  Returns 0 or -1 (reported). */
static int ctl_migrations_missing(const char *cmd, PGconn *conn, const struct ctl_migrations *m, size_t *missing,
				  const char **first)
{
	PGresult *res = ctl_exec(cmd, conn, "SELECT version FROM schema_migrations", 0, NULL);
	size_t i;
	int r, found;

	if (res == NULL)
		return -1;
	*missing = 0;
	*first = NULL;
	for (i = 0; i < m->n; i++) {
		found = 0;
		for (r = 0; r < PQntuples(res) && !found; r++)
			found = atoi(PQgetvalue(res, r, 0)) == m->v[i].version;
		if (!found && (*missing)++ == 0)
			*first = m->v[i].name;
	}
	PQclear(res);
	return 0;
}

/*
 * Parse the one option "--name VALUE" a command takes; *value keeps its
 * default when the option is absent.  Returns the index of the first operand
 * in argv, or -1 after reporting a usage error.
 */
static int ctl_one_option(const char *cmd, const char *name, const char **value, int argc, char **argv)
{
	const struct option opts[] = {
		{ name, required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c != 'o') {
			ctl_getopt_error(cmd, c, argv);
			return -1;
		}
		*value = optarg;
	}
	return optind;
}

/* Operands at argv[first..] of a command that takes none: a usage error. */
static int ctl_no_operands(const char *cmd, int first, int argc, char **argv)
{
	if (first < 0)
		return -1;
	if (first != argc) {
		ctl_error(cmd, "unexpected argument '%s' (see %s --help)", argv[first], CTL_PROG);
		return -1;
	}
	return 0;
}

static int ctl_cmd_migrate(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "migrate", *dir = CTL_SQL_DIR;
	struct ctl_migrations m;
	PGconn *conn;
	size_t i;
	int rc = 0, applied = 0, version;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "dir", &dir, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_migrations_scan(cmd, dir, &m) < 0)
		return CTL_EXIT_ERROR;
	conn = ctl_connect(cmd, g);
	if (conn == NULL || ctl_migrate_prepare(cmd, conn) < 0) {
		ctl_migrations_free(&m);
		PQfinish(conn);
		return CTL_EXIT_ERROR;
	}
	for (i = 0; i < m.n && rc >= 0; i++) {
		rc = ctl_migration_apply(cmd, conn, dir, &m.v[i]);
		if (rc > 0) {
			printf("applied %s\n", m.v[i].name);
			fflush(stdout);
			applied++;
		}
	}
	if (rc >= 0 && applied == 0) {
		rc = ctl_schema_version(cmd, conn, &version);
		if (rc == 0)
			printf("schema is up to date (version %d)\n", version);
	}
	ctl_migrations_free(&m);
	PQfinish(conn);
	return rc < 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Tenants */

/* Workspace and frontend ids travel in HTTP headers and are copied into
 * fixed buffers by callstopd: visible ASCII, 1..CTL_ID_MAX bytes. */
static int ctl_check_id(const char *cmd, const char *what, const char *s)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			break;
	if (len == 0 || len > CTL_ID_MAX || i < len) {
		ctl_error(cmd, "%s '%s': expected 1..%d visible ASCII characters", what, s, CTL_ID_MAX);
		return -1;
	}
	return 0;
}

/* A new workspace id: "ws_" + 20 of [a-z0-9]. */
static int ctl_workspace_id_generate(const char *cmd, char *out, size_t outlen)
{
	char body[21];

	if (ctl_random_chars(body, 20, "abcdefghijklmnopqrstuvwxyz0123456789") < 0) {
		ctl_error(cmd, "the random number generator failed");
		return -1;
	}
	snprintf(out, outlen, "ws_%s", body);
	return 0;
}

/* Report a unique violation on tenants in the operator's words. */
static void ctl_tenant_insert_error(const char *cmd, PGconn *conn, const PGresult *res, const char *name,
				    const char *workspace_id)
{
	const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	if (!ctl_sqlstate_is(res, "23505") || constraint == NULL)
		ctl_db_error(cmd, conn, res, "cannot create the tenant");
	else if (strcmp(constraint, "tenants_name_key") == 0)
		ctl_error(cmd, "a tenant named '%s' already exists", name);
	else if (strcmp(constraint, "tenants_workspace_id_key") == 0)
		ctl_error(cmd, "workspace id '%s' is already used by another tenant", workspace_id);
	else
		ctl_db_error(cmd, conn, res, "cannot create the tenant");
}

int ctl_tenant_ensure(const char *cmd, PGconn *conn, const char *name, const char *workspace_id, char *id,
		      size_t idlen, int *created)
{
	const char *params[2] = { name, workspace_id };
	PGresult *res;

	if (ctl_check_id(cmd, "workspace id", workspace_id) < 0)
		return -1;
	res = PQexecParams(conn,
			   "INSERT INTO tenants (name, workspace_id) VALUES ($1, $2)"
			   " ON CONFLICT (name) DO NOTHING RETURNING id",
			   2, NULL, params, NULL, NULL, 0);
	if (!ctl_result_ok(res)) {
		ctl_tenant_insert_error(cmd, conn, res, name, workspace_id);
		PQclear(res);
		return -1;
	}
	*created = PQntuples(res) == 1;
	if (!*created) {
		PQclear(res);
		res = ctl_exec(cmd, conn, "SELECT id FROM tenants WHERE name = $1", 1, params);
		if (res == NULL)
			return -1;
		if (PQntuples(res) != 1) {
			ctl_error(cmd, "tenant '%s' vanished while it was being created", name);
			PQclear(res);
			return -1;
		}
	}
	snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* The id of the tenant called name into id (idlen bytes).  Returns 0, or -1
 * (reported, "no tenant named" included). */
static int ctl_tenant_id(const char *cmd, PGconn *conn, const char *name, char *id, size_t idlen)
{
	const char *params[1] = { name };
	PGresult *res = ctl_exec(cmd, conn, "SELECT id FROM tenants WHERE name = $1", 1, params);

	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		ctl_error(cmd, "no tenant named '%s' (see %s tenant list)", name, CTL_PROG);
		PQclear(res);
		return -1;
	}
	snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int ctl_tenant_add(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "tenant add", *workspace_id = NULL, *name;
	const char *params[2];
	char generated[32];
	PGresult *res;
	PGconn *conn;
	int first;

	first = ctl_one_option(cmd, "workspace-id", &workspace_id, argc, argv);
	if (first < 0)
		return CTL_EXIT_USAGE;
	if (argc - first != 1) {
		ctl_error(cmd, "expected one tenant NAME (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	name = argv[first];
	if (*name == '\0') {
		ctl_error(cmd, "the tenant name must not be empty");
		return CTL_EXIT_USAGE;
	}
	if (workspace_id == NULL) {
		if (ctl_workspace_id_generate(cmd, generated, sizeof(generated)) < 0)
			return CTL_EXIT_ERROR;
		workspace_id = generated;
	}
	if (ctl_check_id(cmd, "workspace id", workspace_id) < 0)
		return CTL_EXIT_USAGE;

	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	params[0] = name;
	params[1] = workspace_id;
	res = PQexecParams(conn, "INSERT INTO tenants (name, workspace_id) VALUES ($1, $2) RETURNING id", 2, NULL,
			   params, NULL, NULL, 0);
	if (!ctl_result_ok(res)) {
		ctl_tenant_insert_error(cmd, conn, res, name, workspace_id);
		PQclear(res);
		PQfinish(conn);
		return CTL_EXIT_ERROR;
	}
	printf("%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return CTL_EXIT_OK;
}

/* A listing command without arguments: run sql and print it as a table. */
static int ctl_list(const char *cmd, const char *sql, const struct ctl_global *g, int argc, char **argv)
{
	PGresult *res;
	PGconn *conn;

	if (argc != 1) {
		ctl_error(cmd, "unexpected argument '%s' (see %s --help)", argv[1], CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	res = ctl_exec(cmd, conn, sql, 0, NULL);
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static int ctl_tenant_list(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_list("tenant list",
			"SELECT t.id, t.name, t.workspace_id,"
			" (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS keys,"
			" " CTL_RFC3339("t.created_at") " AS created_at"
			" FROM tenants t ORDER BY t.id",
			g, argc, argv);
}

/* A command's subcommands, e.g. "key create". */
struct ctl_sub {
	const char *name;
	int (*fn)(const struct ctl_global *g, int argc, char **argv);
};

/* Run the subcommand argv[1] of group from subs (a usage error if there is
 * none or it is unknown); expected lists their names for the message. */
static int ctl_subcommand(const char *group, const char *expected, const struct ctl_sub *subs, size_t n,
			const struct ctl_global *g, int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		ctl_error(group, "expected %s (see %s --help)", expected, CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	for (i = 0; i < n; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(g, argc - 1, argv + 1);
	ctl_error(group, "unknown subcommand '%s' (expected %s)", argv[1], expected);
	return CTL_EXIT_USAGE;
}

static int ctl_cmd_tenant(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = { { "add", ctl_tenant_add }, { "list", ctl_tenant_list } };

	return ctl_subcommand("tenant", "add or list", subs, sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}

/* ------------------------------------------------------------------------ */
/* API keys and admin tokens */

/* What differs between the two kinds of secret callstopctl issues. */
struct ctl_token_kind {
	const char *noun;       /* "key" */
	const char *prefix;     /* AUTH_KEY_PREFIX */
	/* $1 owner, $2 SHA-256 (bytea), $3 prefix[, $4 frontend id] -> id;
	 * no row when the owner does not exist. */
	const char *sql_insert;
	/* $1 id -> a description ("of tenant acme (frontend fe-1)"), one row
	 * when it was revoked now. */
	const char *sql_revoke;
	/* $1 id -> revoked_at, no row when there is no such id. */
	const char *sql_revoked_at;
};

static const struct ctl_token_kind ctl_api_key = {
	"key",
	AUTH_KEY_PREFIX,
	"INSERT INTO api_keys (tenant_id, key_hash, key_prefix, frontend_id)"
	" SELECT t.id, $2, $3, $4 FROM tenants t WHERE t.name = $1 RETURNING id",
	"UPDATE api_keys k SET revoked_at = now() FROM tenants t"
	" WHERE k.id = $1 AND k.revoked_at IS NULL AND t.id = k.tenant_id"
	" RETURNING format('of tenant %s (frontend %s)', t.name, k.frontend_id)",
	"SELECT " CTL_RFC3339("revoked_at") " FROM api_keys WHERE id = $1",
};

static const struct ctl_token_kind ctl_admin_token = {
	"admin token",
	AUTH_ADMIN_PREFIX,
	"INSERT INTO admin_tokens (name, token_hash, token_prefix) VALUES ($1, $2, $3) RETURNING id",
	"UPDATE admin_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
	" RETURNING format('(%s)', name)",
	"SELECT " CTL_RFC3339("revoked_at") " FROM admin_tokens WHERE id = $1",
};

/*
 * Store a new token's hash and print the token, in one transaction
 * committed only after the token reached stdout: a token that could not be
 * shown must not exist.  frontend_id: NULL for admin tokens.  Its id goes
 * into id (idlen bytes).  Returns 0, 1 if the owner does not exist (not
 * reported), or -1 (reported).
 */
static int ctl_token_store(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind, const char *token,
			   const char *owner, const char *frontend_id, char *id, size_t idlen)
{
	uint8_t hash[AUTH_HASH_LEN];
	char prefix[9];
	const char *params[4] = { owner, (const char *)hash, prefix, frontend_id };
	const int lengths[4] = { 0, AUTH_HASH_LEN, 0, 0 };
	const int formats[4] = { 0, 1, 0, 0 }; /* bytea in binary: no escaping */
	PGresult *res;
	int rc = -1;

	if (auth_hash(token, hash) < 0) {
		ctl_error(cmd, "cannot hash the %s (SHA-256 failed)", kind->noun);
		return -1;
	}
	/* "csk_" and 4 characters: enough to tell keys apart, too few to
	 * help guess one. */
	snprintf(prefix, sizeof(prefix), "%.8s", token);
	if (ctl_command(cmd, conn, "BEGIN") < 0)
		return -1;
	res = PQexecParams(conn, kind->sql_insert, frontend_id ? 4 : 3, NULL, params, lengths, formats, 0);
	if (!ctl_result_ok(res)) {
		ctl_db_error(cmd, conn, res, "cannot store it");
		goto out;
	}
	if (PQntuples(res) != 1) {
		rc = 1;
		goto out;
	}
	snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
		ctl_error(cmd, "cannot write the %s to stdout: %s; none was created", kind->noun, strerror(errno));
		goto out;
	}
	PQclear(res);
	if (ctl_command(cmd, conn, "COMMIT") < 0) {
		ctl_error(cmd, "the %s printed above was NOT stored; discard it", kind->noun);
		return -1;
	}
	return 0;
out:
	PQclear(res);
	ctl_rollback(conn);
	return rc;
}

/* Generate a token of kind and store it (see ctl_token_store). */
static int ctl_token_issue(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind, const char *owner,
			   const char *frontend_id, char *id, size_t idlen)
{
	char token[AUTH_TOKEN_LEN + 1];
	int rc;

	if (auth_token_generate(kind->prefix, token) < 0) {
		ctl_error(cmd, "the random number generator failed");
		return -1;
	}
	rc = ctl_token_store(cmd, conn, kind, token, owner, frontend_id, id, idlen);
	/* It is in stdout's buffer by now, but need not linger in ours. */
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

static int ctl_key_create(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "frontend-id", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "key create", *tenant = NULL, *frontend_id = NULL;
	char id[32];
	PGconn *conn;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'f':
			frontend_id = optarg;
			break;
		default:
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc || tenant == NULL || frontend_id == NULL) {
		ctl_error(cmd, "expected --tenant NAME --frontend-id FID (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_id(cmd, "frontend id", frontend_id) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	rc = ctl_token_issue(cmd, conn, &ctl_api_key, tenant, frontend_id, id, sizeof(id));
	if (rc == 1)
		ctl_error(cmd, "no tenant named '%s' (see %s tenant list)", tenant, CTL_PROG);
	else if (rc == 0)
		fprintf(stderr, "created key %s for tenant %s (frontend %s); it is shown only once, store it now\n",
			id, tenant, frontend_id);
	PQfinish(conn);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static int ctl_key_list(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "key list", *tenant = NULL;
	const char *params[1] = { NULL };
	char tenant_id[32];
	PGresult *res = NULL;
	PGconn *conn;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "tenant", &tenant, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	if (tenant == NULL || ctl_tenant_id(cmd, conn, tenant, tenant_id, sizeof(tenant_id)) == 0) {
		params[0] = tenant ? tenant_id : NULL;
		res = ctl_exec(cmd, conn,
			       "SELECT k.id, t.name AS tenant, k.key_prefix AS prefix, k.frontend_id,"
			       " " CTL_RFC3339("k.created_at") " AS created_at,"
			       " " CTL_RFC3339("k.revoked_at") " AS revoked_at"
			       " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
			       " WHERE $1::bigint IS NULL OR k.tenant_id = $1::bigint"
			       " ORDER BY k.id",
			       1, params);
	}
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

/* Why token id of kind could not be revoked: no such id, or it already was. */
static void ctl_token_revoke_error(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind,
				   const char *id)
{
	const char *params[1] = { id };
	PGresult *res = ctl_exec(cmd, conn, kind->sql_revoked_at, 1, params);

	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		ctl_error(cmd, "no %s with id %s", kind->noun, id);
	else
		ctl_error(cmd, "%s %s was already revoked at %s", kind->noun, id, PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* "<kind> revoke ID" (argv[0] is "revoke"). */
static int ctl_token_revoke(const char *cmd, const struct ctl_global *g, const struct ctl_token_kind *kind,
			    int argc, char **argv)
{
	const char *params[1];
	long long id;
	PGresult *res;
	PGconn *conn;
	int rc = CTL_EXIT_ERROR;

	if (argc != 2) {
		ctl_error(cmd, "expected one ID (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_parse_int(cmd, "ID", argv[1], 1, INT64_MAX, &id) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	params[0] = argv[1];
	res = ctl_exec(cmd, conn, kind->sql_revoke, 1, params);
	if (res != NULL && PQntuples(res) == 1) {
		printf("revoked %s %lld %s\n", kind->noun, id, PQgetvalue(res, 0, 0));
		rc = CTL_EXIT_OK;
	} else if (res != NULL) {
		ctl_token_revoke_error(cmd, conn, kind, argv[1]);
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_key_revoke(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_token_revoke("key revoke", g, &ctl_api_key, argc, argv);
}

static int ctl_cmd_key(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "create", ctl_key_create }, { "list", ctl_key_list }, { "revoke", ctl_key_revoke },
	};

	return ctl_subcommand("key", "create, list or revoke", subs, sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}

static int ctl_admin_create(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "admin-token create", *name = "admin";
	char id[32];
	PGconn *conn;
	int first, rc;

	first = ctl_one_option(cmd, "name", &name, argc, argv);
	if (first < 0)
		return CTL_EXIT_USAGE;
	if (first != argc || *name == '\0') {
		ctl_error(cmd, "expected [--name NAME] (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	rc = ctl_token_issue(cmd, conn, &ctl_admin_token, name, NULL, id, sizeof(id));
	if (rc == 0)
		fprintf(stderr, "created admin token %s (%s); it is shown only once, store it now\n", id, name);
	PQfinish(conn);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static int ctl_admin_list(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_list("admin-token list",
			"SELECT id, name, token_prefix AS prefix,"
			" " CTL_RFC3339("created_at") " AS created_at,"
			" " CTL_RFC3339("revoked_at") " AS revoked_at"
			" FROM admin_tokens ORDER BY id",
			g, argc, argv);
}

static int ctl_admin_revoke(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_token_revoke("admin-token revoke", g, &ctl_admin_token, argc, argv);
}

static int ctl_cmd_admin_token(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "create", ctl_admin_create }, { "list", ctl_admin_list }, { "revoke", ctl_admin_revoke },
	};

	return ctl_subcommand("admin-token", "create, list or revoke", subs, sizeof(subs) / sizeof(subs[0]), g, argc,
			    argv);
}

/* ------------------------------------------------------------------------ */
/* Termination outbox */

static int ctl_outbox_list(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "outbox list", *state = NULL;
	const char *params[2];
	char limit_s[24];
	long long limit = 100;
	PGresult *res;
	PGconn *conn;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 's') {
			state = optarg;
			if (strcmp(state, "pending") != 0 && strcmp(state, "done") != 0 && strcmp(state, "failed") != 0) {
				ctl_error(cmd, "--state: expected pending, done or failed, got '%s'", state);
				return CTL_EXIT_USAGE;
			}
		} else if (c == 'l') {
			if (ctl_parse_int(cmd, "--limit", optarg, 1, 1000000, &limit) < 0)
				return CTL_EXIT_USAGE;
		} else {
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		ctl_error(cmd, "unexpected argument '%s' (see %s --help)", argv[optind], CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	snprintf(limit_s, sizeof(limit_s), "%lld", limit);
	params[0] = state;
	params[1] = limit_s;
	/* newest first; last_error on one line (it carries a response body) */
	res = ctl_exec(cmd, conn,
		       "SELECT o.id, t.name AS tenant, o.call_id, o.provider, o.target, o.state, o.attempts,"
		       " " CTL_RFC3339("o.next_attempt_at") " AS next_attempt_at,"
		       " regexp_replace(o.last_error, '[[:cntrl:]]+', ' ', 'g') AS last_error"
		       " FROM termination_outbox o JOIN tenants t ON t.id = o.tenant_id"
		       " WHERE $1::text IS NULL OR o.state = $1::text"
		       " ORDER BY o.id DESC LIMIT $2::bigint",
		       2, params);
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

/* Why the row id (given to retry) was not re-queued. */
static void ctl_outbox_retry_error(const char *cmd, PGconn *conn, const char *id)
{
	const char *params[1] = { id };
	PGresult *res = ctl_exec(cmd, conn, "SELECT state FROM termination_outbox WHERE id = $1::bigint", 1, params);

	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		ctl_error(cmd, "no outbox row with id %s", id);
	else
		ctl_error(cmd, "outbox row %s is %s, not failed; not re-queued", id, PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * Re-queue dead-lettered rows: pending, attempts 0, due now, no last_error;
 * then wake the retry children (the NOTIFY trigger fires on insert only).
 * The Idempotency-Key stays: a hangup that did get through is not repeated.
 */
static int ctl_outbox_retry(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all-failed", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "outbox retry";
	const char *params[1];
	char *ids = NULL;
	size_t len = 3, i, n;
	long long id;
	int c, all = 0, rc = CTL_EXIT_ERROR, requeued, missing = 0;
	PGresult *res = NULL;
	PGconn *conn;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c != 'a') {
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
		all = 1;
	}
	n = (size_t)(argc - optind);
	if (all == (n > 0)) {
		ctl_error(cmd, "expected ID... or --all-failed (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	/* the ids as a PostgreSQL array literal: {1,2,3} */
	for (i = 0; i < n; i++) {
		if (ctl_parse_int(cmd, "ID", argv[optind + (int)i], 1, INT64_MAX, &id) < 0)
			return CTL_EXIT_USAGE;
		len += strlen(argv[optind + (int)i]) + 1;
	}
	if (!all) {
		ids = calloc(1, len);
		if (ids == NULL) {
			ctl_error(cmd, "out of memory");
			return CTL_EXIT_ERROR;
		}
		ctl_append(ids, len, "{");
		for (i = 0; i < n; i++) {
			ctl_append(ids, len, i ? "," : "");
			ctl_append(ids, len, argv[optind + (int)i]);
		}
		ctl_append(ids, len, "}");
	}
	conn = ctl_connect(cmd, g);
	if (conn == NULL) {
		free(ids);
		return CTL_EXIT_ERROR;
	}
	params[0] = ids;
	if (ctl_command(cmd, conn, "BEGIN") < 0)
		goto out;
	res = ctl_exec(cmd, conn,
		       "UPDATE termination_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
		       " last_error = NULL, updated_at = now()"
		       " WHERE state = 'failed' AND ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))"
		       " RETURNING id",
		       1, params);
	if (res == NULL || ctl_command(cmd, conn, "SELECT pg_notify('callstop_outbox', 'retry')") < 0 ||
	    ctl_command(cmd, conn, "COMMIT") < 0) {
		ctl_rollback(conn);
		goto out;
	}
	requeued = PQntuples(res);
	for (i = 0; i < n; i++) {
		const char *want = argv[optind + (int)i];
		int r, found = 0;

		ctl_parse_int(cmd, "ID", want, 1, INT64_MAX, &id);
		for (r = 0; r < requeued && !found; r++)
			found = strtoll(PQgetvalue(res, r, 0), NULL, 10) == id;
		if (!found) {
			ctl_outbox_retry_error(cmd, conn, want);
			missing++;
		}
	}
	printf("re-queued %d outbox row(s)\n", requeued);
	rc = missing ? CTL_EXIT_ERROR : CTL_EXIT_OK;
out:
	PQclear(res);
	PQfinish(conn);
	free(ids);
	return rc;
}

static int ctl_cmd_outbox(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = { { "list", ctl_outbox_list }, { "retry", ctl_outbox_retry } };

	return ctl_subcommand("outbox", "list or retry", subs, sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}

/* ------------------------------------------------------------------------ */
/* check */

/* Compare the schema with the migrations of dir.  Returns 0 (up to date, or
 * newer than dir: a package older than its database still runs) or -1
 * (reported). */
static int ctl_check_schema(const char *cmd, PGconn *conn, const char *dir)
{
	struct ctl_migrations m;
	const char *first;
	size_t missing;
	int version, highest, rc = -1;

	if (ctl_migrations_scan(cmd, dir, &m) < 0)
		return -1;
	highest = m.v[m.n - 1].version;
	if (ctl_schema_version(cmd, conn, &version) < 0)
		goto out;
	if (version < 0) {
		ctl_error(cmd, "schema: not migrated (no schema_migrations table); run %s migrate", CTL_PROG);
		goto out;
	}
	if (ctl_migrations_missing(cmd, conn, &m, &missing, &first) < 0)
		goto out;
	if (missing > 0) {
		ctl_error(cmd, "schema: version %d, but %zu migration(s) of %s are not applied (first: %s); run %s migrate",
			  version, missing, dir, first, CTL_PROG);
		goto out;
	}
	if (version > highest)
		printf("schema: version %d (newer than the migrations in %s, which end at %d)\n", version, dir,
		       highest);
	else
		printf("schema: version %d (migrations in %s: %d)\n", version, dir, highest);
	rc = 0;
out:
	ctl_migrations_free(&m);
	return rc;
}

static int ctl_cmd_check(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "check", *dir = CTL_SQL_DIR;
	struct conf *conf;
	PGconn *conn;
	int rc;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "dir", &dir, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_load_config(cmd, g, &conf) < 0)
		return CTL_EXIT_ERROR;
	if (conf != NULL)
		printf("config: %s: ok\n", conf->path);
	else
		printf("config: none (%s does not exist)\n", CONF_DEFAULT_PATH);
	conn = ctl_connect_to(cmd, g->conninfo ? g->conninfo : conf ? conf->database : NULL);
	conf_free(conf);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	printf("database: %s on %s, port %s: PostgreSQL %s\n", PQdb(conn), PQhost(conn), PQport(conn),
	       PQparameterStatus(conn, "server_version"));
	rc = ctl_check_schema(cmd, conn, dir);
	PQfinish(conn);
	if (rc < 0)
		return CTL_EXIT_ERROR;
	printf("ok\n");
	return CTL_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* main */

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-c CONFIG] [-d CONNINFO] COMMAND [ARGS]\n"
		"       %s -h | -v\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE        read `database` from FILE (default $CALLSTOP_CONF,\n"
		"                           else %s if it exists)\n"
		"  -d, --database CONNINFO  libpq connection string; wins over the config file\n"
		"                           (with neither, libpq's PGHOST, PGDATABASE, ... apply)\n"
		"  -h, --help               print this help and exit\n"
		"  -v, --version            print the version and exit\n"
		"\n"
		"Commands:\n"
		"  migrate [--dir DIR]      apply DIR/NNN_name.sql in order (default DIR %s)\n"
		"  tenant add NAME [--workspace-id ID]\n"
		"                           create a tenant; prints its id\n"
		"  tenant list              list tenants with their active key counts\n"
		"  key create --tenant NAME --frontend-id FID\n"
		"                           create an API key; prints it, once, on stdout\n"
		"  key list [--tenant NAME] list API keys (prefixes only)\n"
		"  key revoke ID            revoke an API key\n"
		"  admin-token create [--name NAME]\n"
		"                           create an admin token (name default \"admin\");\n"
		"                           prints it, once, on stdout\n"
		"  admin-token list         list admin tokens (prefixes only)\n"
		"  admin-token revoke ID    revoke an admin token\n"
		"  outbox list [--state pending|done|failed] [--limit N]\n"
		"                           list termination outbox rows, newest first\n"
		"                           (default limit 100)\n"
		"  outbox retry ID... | --all-failed\n"
		"                           re-queue dead-lettered (failed) rows: pending,\n"
		"                           attempts 0, due now; wakes the retry child\n"
		"  demo [--tenant NAME] [--workspace-id ID] [--batch-size N]\n"
		"       [--small-batch-size N] [--running N]\n"
		"                           create demo calls and batches (tenant demo,\n"
		"                           ws_demo, 100000, 1000, 20); prints\n"
		"                           \"call ID STATUS\" and \"batch JOB_ID ID ENTRIES STATUS\"\n"
		"  check [--dir DIR]        check the config, the database and the schema\n"
		"\n"
		"Exit status: 0 success, 1 error, 2 usage error.\n",
		CTL_PROG, CTL_PROG, CONF_DEFAULT_PATH, CTL_SQL_DIR);
}

/*
 * Make sure fds 0-2 are open before libpq opens its socket: started with
 * stdout closed, the socket would become fd 1 and a printed key would go to
 * the server.  A closed stdin or stderr is replaced by /dev/null; a closed
 * stdout is an error, since what a command prints is its result.
 */
static int ctl_std_fds(const char *cmd)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			return -1; /* nowhere to report it */
		if (fd == 1) {
			ctl_error(cmd, "stdout is closed; it carries the result");
			return -1;
		}
	}
	return 0;
}

static int ctl_dispatch(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub commands[] = {
		{ "migrate", ctl_cmd_migrate }, { "tenant", ctl_cmd_tenant }, { "key", ctl_cmd_key },
		{ "admin-token", ctl_cmd_admin_token }, { "demo", ctl_demo }, { "outbox", ctl_cmd_outbox },
		{ "check", ctl_cmd_check },
	};
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].fn(g, argc, argv);
	ctl_error(argv[0], "unknown command (see %s --help)", CTL_PROG);
	return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "database", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_global g = { NULL, NULL };
	const char *cmd;
	int c, rc;

	opterr = 0;
	/* '+': stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:c:d:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			g.config_path = optarg;
			break;
		case 'd':
			g.conninfo = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return CTL_EXIT_OK;
		case 'v':
			printf("%s (callstop) %s\n", CTL_PROG, PACKAGE_VERSION);
			return CTL_EXIT_OK;
		default:
			ctl_getopt_error("options", c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (ctl_std_fds(cmd) < 0)
		return CTL_EXIT_ERROR;
	rc = ctl_dispatch(&g, argc - optind, argv + optind);
	/* A command that failed has said why; a full disk must not turn a
	 * success into a silent loss of its output. */
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		ctl_error(cmd, "cannot write to stdout: %s", strerror(errno));
		rc = CTL_EXIT_ERROR;
	} else if (ferror(stdout) && rc == CTL_EXIT_OK) {
		ctl_error(cmd, "cannot write to stdout");
		rc = CTL_EXIT_ERROR;
	}
	return rc;
}
