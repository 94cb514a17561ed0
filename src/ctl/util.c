/*
 * util.c - see ctl.h: what every command of callstopctl uses.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "common/conf.h"
#include "ctl/ctl.h"

/* Seconds libpq may take to connect unless the conninfo or PGCONNECT_TIMEOUT
 * says otherwise: an unreachable host must not hang `check` for minutes. */
#define CTL_CONNECT_TIMEOUT "10"

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

void ctl_append(char *dst, size_t dstlen, const char *text)
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
		const char *text =
			res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn);

		ctl_fold(msg, sizeof(msg), text, strlen(text));
	}
	ctl_error(cmd, "%s", msg);
}

int ctl_sqlstate_is(const PGresult *res, const char *sqlstate)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s != NULL && strcmp(s, sqlstate) == 0;
}

int ctl_result_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

PGresult *ctl_exec(const char *cmd, PGconn *conn, enum ctl_stmt stmt, int nparams, const char *const *params)
{
	PGresult *res = ctl_stmt_run(conn, stmt, nparams, params, NULL, NULL);

	if (ctl_result_ok(res))
		return res;
	ctl_db_error(cmd, conn, res, NULL);
	PQclear(res);
	return NULL;
}

int ctl_command(const char *cmd, PGconn *conn, enum ctl_stmt stmt)
{
	PGresult *res = ctl_exec(cmd, conn, stmt, 0, NULL);

	PQclear(res);
	return res ? 0 : -1;
}

void ctl_rollback(PGconn *conn)
{
	PQclear(ctl_stmt_run(conn, CTL_ROLLBACK, 0, NULL, NULL, NULL));
}

int ctl_column(const PGresult *res, const char *name)
{
	int col = PQfnumber(res, name);

	if (col < 0) {
		/* Only a statement of stmt.c that lost the column gets here,
		 * and a value read from the wrong place is worse than none. */
		ctl_error("internal error", "the statement returned no column '%s' (see src/ctl/stmt.c)",
			  name);
		abort();
	}
	return col;
}

const char *ctl_value(const PGresult *res, int row, const char *name)
{
	return PQgetvalue(res, row, ctl_column(res, name));
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

int ctl_parse_choice(const char *cmd, const char *name, const char *s, const char *const *choices)
{
	char expected[256] = "";
	size_t i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(s, choices[i]) == 0)
			return 0;
	for (i = 0; choices[i] != NULL; i++) {
		ctl_append(expected, sizeof(expected), i == 0 ? "" : choices[i + 1] == NULL ? " or " : ", ");
		ctl_append(expected, sizeof(expected), choices[i]);
	}
	ctl_error(cmd, "%s: expected %s, got '%s'", name, expected, s);
	return -1;
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
	/* only a file that is not there means "none": one this user may not
	 * read (/etc/callstop is 0750 root:callstop) is reported as such */
	return access(CONF_DEFAULT_PATH, F_OK) == 0 || errno != ENOENT ? CONF_DEFAULT_PATH : NULL;
}

int ctl_load_config(const char *cmd, const struct ctl_global *g, struct conf **conf)
{
	const char *path = g->config_path ? g->config_path : ctl_default_config();
	char err[1024];

	*conf = NULL;
	if (path == NULL)
		return 0;
	*conf = conf_load(path, err, sizeof(err));
	if (*conf == NULL && access(path, R_OK) < 0) {
		ctl_error(cmd, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (*conf == NULL) {
		ctl_error(cmd, "%s", err);
		return -1;
	}
	return 0;
}

PGconn *ctl_connect_to(const char *cmd, const char *conninfo)
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

static int ctl_json_output;

void ctl_output_json(int on)
{
	ctl_json_output = on;
}

static int ctl_column_numeric(const PGresult *res, int col)
{
	Oid t = PQftype(res, col);

	return t == CTL_OID_INT8 || t == CTL_OID_INT4 || t == CTL_OID_INT2;
}

/* --json: cJSON writes it, so names and values are escaped as RFC 8259 says. */
static void ctl_print_json(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res), r, c;
	cJSON *arr = cJSON_CreateArray(), *o;
	char *text;

	for (r = 0; arr != NULL && r < rows; r++) {
		if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, o))
			break;
		for (c = 0; c < cols; c++) {
			const char *v = PQgetvalue(res, r, c);

			if (PQgetisnull(res, r, c))
				cJSON_AddNullToObject(o, PQfname(res, c));
			else if (ctl_column_numeric(res, c))
				cJSON_AddNumberToObject(o, PQfname(res, c), strtod(v, NULL));
			else
				cJSON_AddStringToObject(o, PQfname(res, c), v);
		}
	}
	text = r == rows ? cJSON_PrintUnformatted(arr) : NULL;
	if (text != NULL)
		printf("%s\n", text);
	else
		ctl_error("output", "out of memory");
	cJSON_free(text);
	cJSON_Delete(arr);
}

void ctl_print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res), r, c;
	int *width;

	if (ctl_json_output) {
		ctl_print_json(res);
		return;
	}
	width = calloc((size_t)cols, sizeof(*width));
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
			const char *v = r < 0                    ? PQfname(res, c)
					: PQgetisnull(res, r, c) ? "-"
								 : PQgetvalue(res, r, c);
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
/* Options and subcommands */

int ctl_one_option(const char *cmd, const char *name, const char **value, int argc, char **argv)
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

int ctl_no_operands(const char *cmd, int first, int argc, char **argv)
{
	if (first < 0)
		return -1;
	if (first != argc) {
		ctl_error(cmd, "unexpected argument '%s' (see %s --help)", argv[first], CTL_PROG);
		return -1;
	}
	return 0;
}

int ctl_list(const char *cmd, enum ctl_stmt stmt, const struct ctl_global *g, int argc, char **argv)
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
	res = ctl_exec(cmd, conn, stmt, 0, NULL);
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

int ctl_subcommand(const char *group, const char *expected, const struct ctl_sub *subs, size_t n,
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
