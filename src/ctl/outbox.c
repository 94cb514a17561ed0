/*
 * outbox.c - callstopctl outbox list|retry: the termination outbox as an
 * operator sees it, and the re-queueing of its dead letters.
 */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl/ctl.h"

/* A row's states (sent, unknown: SPEC 11), for --state. */
static const char *const ctl_outbox_states[] = { "pending", "sent", "done", "failed", "unknown", NULL };

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
			if (ctl_parse_choice(cmd, "--state", state, ctl_outbox_states) < 0)
				return CTL_EXIT_USAGE;
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
	res = ctl_exec(cmd, conn, CTL_OUTBOX_LIST, 2, params);
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
	PGresult *res = ctl_exec(cmd, conn, CTL_OUTBOX_STATE, 1, params);

	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		ctl_error(cmd, "no outbox row with id %s", id);
	else
		ctl_error(cmd, "outbox row %s is %s, not failed; not re-queued", id,
			  ctl_value(res, 0, "state"));
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
	int c, all = 0, rc = CTL_EXIT_ERROR, requeued, missing = 0, col;
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
	if (ctl_command(cmd, conn, CTL_BEGIN) < 0)
		goto out;
	res = ctl_exec(cmd, conn, CTL_OUTBOX_REQUEUE, 1, params);
	if (res == NULL || ctl_command(cmd, conn, CTL_OUTBOX_NOTIFY) < 0 ||
	    ctl_command(cmd, conn, CTL_COMMIT) < 0) {
		ctl_rollback(conn);
		goto out;
	}
	requeued = PQntuples(res);
	col = ctl_column(res, "id");
	for (i = 0; i < n; i++) {
		const char *want = argv[optind + (int)i];
		int r, found = 0;

		ctl_parse_int(cmd, "ID", want, 1, INT64_MAX, &id);
		for (r = 0; r < requeued && !found; r++)
			found = strtoll(PQgetvalue(res, r, col), NULL, 10) == id;
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

int ctl_cmd_outbox(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = { { "list", ctl_outbox_list }, { "retry", ctl_outbox_retry } };

	return ctl_subcommand("outbox", "list or retry", subs, sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}
