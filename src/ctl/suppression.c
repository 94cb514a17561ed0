/*
 * suppression.c - callstopctl suppression add|remove|list|import: a tenant's
 * do-not-call list (SPEC 12) as an operator keeps it.
 *
 * add and import go through callstop_suppress() (sql/010_campaign.sql), as
 * POST /suppressions does: a number joins the list and, in the same
 * transaction, its not-yet-started entries in the tenant's active batches
 * are cancelled.  import reads one number per line (blank lines and lines
 * starting with # skipped), checks every line before it connects, and adds
 * them all in one transaction, 1000 numbers per statement, reporting its
 * progress on stderr.  Active calls are not hung up from here (that needs
 * callstopd's providers): POST /suppressions with "hangup": true does it.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/db.h"
#include "core/campaign.h"
#include "ctl/ctl.h"

#define CTL_SUPPRESS_CHUNK 1000     /* numbers per statement, as the API's limit */
#define CTL_SUPPRESS_PROGRESS 10000 /* report every this many numbers */
#define CTL_SUPPRESS_LINE_MAX 256   /* bytes of one line of an import file */

/* --tenant NAME (required), --reason TEXT, --limit N; the operands from
 * *first.  Returns 0, or -1 after a usage error. */
static int ctl_suppression_opts(const char *cmd, int argc, char **argv, const char **tenant,
				const char **reason, long long *limit, int *first)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "reason", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 't') {
			*tenant = optarg;
		} else if (c == 'r' && reason != NULL) {
			*reason = optarg;
		} else if (c == 'l' && limit != NULL) {
			if (ctl_parse_int(cmd, "--limit", optarg, 1, 1000000000, limit) < 0)
				return -1;
		} else if (c == 'r' || c == 'l') {
			ctl_error(cmd, "unknown option '--%s' (see %s --help)", c == 'r' ? "reason" : "limit",
				  CTL_PROG);
			return -1;
		} else {
			ctl_getopt_error(cmd, c, argv);
			return -1;
		}
	}
	if (*tenant == NULL) {
		ctl_error(cmd, "--tenant NAME is required (see %s --help)", CTL_PROG);
		return -1;
	}
	*first = optind;
	return 0;
}

static int ctl_suppression_check(const char *cmd, const char *number, const char *where)
{
	if (campaign_is_e164(number))
		return 0;
	ctl_error(cmd, "%s'%s' is not an E.164 number (+ and 7 to 15 digits, the first not 0)", where,
		  number);
	return -1;
}

/* Add numbers[0..n) in one transaction; totals on stdout. */
static int ctl_suppression_run(const char *cmd, const struct ctl_global *g, const char *tenant,
			       const char *reason, char **numbers, size_t n)
{
	long long added = 0, already = 0, cancelled = 0;
	char id[24];
	size_t i, k;
	int rc = CTL_EXIT_ERROR;
	PGconn *conn = ctl_connect(cmd, g);

	if (conn == NULL)
		return CTL_EXIT_ERROR;
	if (ctl_tenant_id(cmd, conn, tenant, id, sizeof(id)) < 0 || ctl_command(cmd, conn, CTL_BEGIN) < 0)
		goto out;
	for (i = 0; i < n; i += k) {
		char *list;
		const char *params[3];
		PGresult *res;

		k = n - i < CTL_SUPPRESS_CHUNK ? n - i : CTL_SUPPRESS_CHUNK;
		list = db_text_array((const char *const *)numbers + i, k);
		if (list == NULL) {
			ctl_error(cmd, "out of memory");
			ctl_rollback(conn);
			goto out;
		}
		params[0] = id;
		params[1] = list;
		params[2] = reason;
		res = ctl_exec(cmd, conn, CTL_SUPPRESS, 3, params);
		free(list);
		if (res == NULL) {
			ctl_rollback(conn);
			goto out;
		}
		added += atoll(ctl_value(res, 0, "added"));
		already += atoll(ctl_value(res, 0, "already_suppressed"));
		cancelled += atoll(ctl_value(res, 0, "entries_cancelled"));
		PQclear(res);
		if (n > CTL_SUPPRESS_PROGRESS && ((i + k) % CTL_SUPPRESS_PROGRESS == 0 || i + k == n))
			fprintf(stderr, "%s: %s: %zu/%zu numbers\n", CTL_PROG, cmd, i + k, n);
	}
	if (ctl_command(cmd, conn, CTL_COMMIT) < 0)
		goto out;
	printf("added %lld, already suppressed %lld, pending entries cancelled %lld\n", added, already,
	       cancelled);
	rc = CTL_EXIT_OK;
out:
	PQfinish(conn);
	return rc;
}

static int ctl_suppression_add(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "suppression add", *tenant = NULL, *reason = NULL;
	int first, i;

	if (ctl_suppression_opts(cmd, argc, argv, &tenant, &reason, NULL, &first) < 0)
		return CTL_EXIT_USAGE;
	if (first == argc) {
		ctl_error(cmd, "expected NUMBER... (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	for (i = first; i < argc; i++)
		if (ctl_suppression_check(cmd, argv[i], "") < 0)
			return CTL_EXIT_USAGE;
	return ctl_suppression_run(cmd, g, tenant, reason, argv + first, (size_t)(argc - first));
}

static int ctl_suppression_remove(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "suppression remove", *tenant = NULL, *params[2];
	char id[24];
	int first, rc = CTL_EXIT_ERROR;
	PGresult *res = NULL;
	PGconn *conn;

	if (ctl_suppression_opts(cmd, argc, argv, &tenant, NULL, NULL, &first) < 0)
		return CTL_EXIT_USAGE;
	if (argc - first != 1) {
		ctl_error(cmd, "expected one NUMBER (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_suppression_check(cmd, argv[first], "") < 0)
		return CTL_EXIT_USAGE;
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	params[0] = id;
	params[1] = argv[first];
	if (ctl_tenant_id(cmd, conn, tenant, id, sizeof(id)) == 0 &&
	    (res = ctl_exec(cmd, conn, CTL_UNSUPPRESS, 2, params)) != NULL) {
		if (PQntuples(res) == 0) {
			ctl_error(cmd, "%s is not on the list of tenant %s", argv[first], tenant);
		} else {
			printf("removed %s (entries it cancelled stay cancelled)\n", argv[first]);
			rc = CTL_EXIT_OK;
		}
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_suppression_list(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "suppression list", *tenant = NULL, *params[2];
	char id[24], limit_s[24];
	long long limit = 1000;
	int first, rc = CTL_EXIT_ERROR;
	PGresult *res = NULL;
	PGconn *conn;

	if (ctl_suppression_opts(cmd, argc, argv, &tenant, NULL, &limit, &first) < 0 ||
	    ctl_no_operands(cmd, first, argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	snprintf(limit_s, sizeof(limit_s), "%lld", limit);
	params[0] = id;
	params[1] = limit_s;
	if (ctl_tenant_id(cmd, conn, tenant, id, sizeof(id)) == 0 &&
	    (res = ctl_exec(cmd, conn, CTL_SUPPRESSION_LIST, 2, params)) != NULL) {
		ctl_print_table(res);
		rc = CTL_EXIT_OK;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* The numbers of file (one per line; "-" is stdin) into *out; every line
 * checked.  Returns how many, or -1 (reported). */
static long ctl_suppression_read(const char *cmd, const char *file, char ***out)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	char line[CTL_SUPPRESS_LINE_MAX], where[64], **v = NULL;
	size_t n = 0, cap = 0, lineno = 0, len;
	long rc = -1;

	if (f == NULL) {
		ctl_error(cmd, "cannot open %s", file);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = line, **nv;

		lineno++;
		len = strlen(s);
		if (len == sizeof(line) - 1 && s[len - 1] != '\n') {
			ctl_error(cmd, "%s:%zu: line too long", file, lineno);
			goto out;
		}
		while (len > 0 &&
		       (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
			s[--len] = '\0';
		s += strspn(s, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%zu: ", file, lineno);
		if (ctl_suppression_check(cmd, s, where) < 0)
			goto out;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto oom;
			v = nv;
		}
		if ((v[n] = strdup(s)) == NULL)
			goto oom;
		n++;
	}
	if (ferror(f)) {
		ctl_error(cmd, "cannot read %s", file);
		goto out;
	}
	rc = (long)n;
	goto out;
oom:
	ctl_error(cmd, "out of memory");
out:
	if (f != stdin)
		fclose(f);
	if (rc < 0) {
		while (n > 0)
			free(v[--n]);
		free(v);
		v = NULL;
	}
	*out = v;
	return rc;
}

static int ctl_suppression_import(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "suppression import", *tenant = NULL, *reason = NULL;
	char **numbers = NULL;
	long n;
	int first, rc;

	if (ctl_suppression_opts(cmd, argc, argv, &tenant, &reason, NULL, &first) < 0)
		return CTL_EXIT_USAGE;
	if (argc - first != 1) {
		ctl_error(cmd, "expected one FILE (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	n = ctl_suppression_read(cmd, argv[first], &numbers);
	if (n < 0)
		return CTL_EXIT_USAGE;
	rc = n == 0 ? (printf("no numbers in %s\n", argv[first]), CTL_EXIT_OK)
		    : ctl_suppression_run(cmd, g, tenant, reason, numbers, (size_t)n);
	while (n > 0)
		free(numbers[--n]);
	free(numbers);
	return rc;
}

int ctl_cmd_suppression(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "add", ctl_suppression_add },
		{ "remove", ctl_suppression_remove },
		{ "list", ctl_suppression_list },
		{ "import", ctl_suppression_import },
	};

	return ctl_subcommand("suppression", "add, remove, list or import", subs,
			      sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}
