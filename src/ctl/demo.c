/*
 * demo.c - callstopctl demo: a tenant with calls in every state and two
 * batches, for trying the API (./bootstrap demo); not for production
 * databases.
 *
 * Batch calls are made through the dialer functions of sql/002_dialer.sql
 * exactly as a dialer makes them, so the demo also exercises that contract;
 * only the standalone calls are inserted directly.  stdout carries only the
 * "call ..." and "batch ..." lines that scripts parse; progress goes to
 * stderr.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/states.h"
#include "ctl/ctl.h"

#define DEMO_CMD "demo"
/* Rows per INSERT: big enough to amortise the round trip and the counter
 * trigger, small enough to report progress. */
#define DEMO_CHUNK 10000
/* Calls the small batch completes beside the running ones. */
#define DEMO_COMPLETED 10
#define DEMO_BATCH_MAX 100000000LL

struct demo_opts {
	const char *tenant;
	const char *workspace_id;
	long long batch_size;
	long long small_batch_size;
	long long running;
};

/* One demo run: its connection and tenant, and the number of the next
 * LiveKit room, so that the rooms of one run never collide. */
struct demo_run {
	PGconn *conn;
	char tenant_id[32];
	int room_seq;
};

/* The standalone calls: one in every call state of SPEC 5, then more running
 * ones.  answered: it got as far as started_at. */
struct demo_call {
	const char *status;
	int answered;
};

static const struct demo_call demo_calls[] = {
	{ "initiated", 0 }, { "connecting", 0 },    { "ringing", 0 },   { "running", 1 },
	{ "completed", 1 }, { "ended", 1 },         { "cancelled", 1 }, { "failed", 0 },
	{ "error", 0 },     { "declined", 0 },      { "rejected", 0 },  { "busy", 0 },
	{ "no_answer", 0 }, { "not_reachable", 0 }, { "running", 1 },   { "running", 1 },
	{ "running", 1 },   { "running", 1 },
};

#define DEMO_NCALLS (sizeof(demo_calls) / sizeof(demo_calls[0]))

static double demo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Returns 0, or a ctl_exit code to exit with (usage reported). */
static int demo_parse(int argc, char **argv, struct demo_opts *o)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "workspace-id", required_argument, NULL, 'w' },
		{ "batch-size", required_argument, NULL, 'b' },
		{ "small-batch-size", required_argument, NULL, 's' },
		{ "running", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	char name[32];
	int c, idx;

	o->tenant = "demo";
	o->workspace_id = "ws_demo";
	o->batch_size = 100000;
	o->small_batch_size = 1000;
	o->running = 20;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		switch (c) {
		case 't':
			o->tenant = optarg;
			break;
		case 'w':
			o->workspace_id = optarg;
			break;
		case 'b':
		case 's':
		case 'r':
			snprintf(name, sizeof(name), "--%s", opts[idx].name);
			if (ctl_parse_int(DEMO_CMD, name, optarg, c == 'r' ? 0 : 1, DEMO_BATCH_MAX,
					  c == 'b'   ? &o->batch_size
					  : c == 's' ? &o->small_batch_size
						     : &o->running) < 0)
				return CTL_EXIT_USAGE;
			break;
		default:
			ctl_getopt_error(DEMO_CMD, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		ctl_error(DEMO_CMD, "unexpected argument '%s' (see %s --help)", argv[optind], CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (*o->tenant == '\0') {
		ctl_error(DEMO_CMD, "the tenant name must not be empty");
		return CTL_EXIT_USAGE;
	}
	return 0;
}

/* A fresh LiveKit room name and, when with_openai, an OpenAI call id ("" if
 * not).  Returns 0 or -1 (reported). */
static int demo_targets(struct demo_run *run, int with_openai, char *room, size_t roomlen, char *openai,
			size_t openailen)
{
	char hex[25];

	snprintf(room, roomlen, "demo-room-%d", ++run->room_seq);
	openai[0] = '\0';
	if (!with_openai)
		return 0;
	if (ctl_random_hex(hex, 12) < 0) {
		ctl_error(DEMO_CMD, "the random number generator failed");
		return -1;
	}
	snprintf(openai, openailen, "rtc_demo_%s", hex);
	return 0;
}

/* Insert standalone call i into ids[i] (37 bytes).  Returns 0 or -1. */
static int demo_call_insert(struct demo_run *run, size_t i, int *active_seen, char *id)
{
	const struct demo_call *dc = &demo_calls[i];
	int active = states_call_is_active(dc->status);
	char agent[16], number[16], room[32] = "", openai[40] = "", minutes[16];
	const char *params[9];
	PGresult *res;

	if (active) {
		/* Every active call has a room, every other one also an OpenAI
		 * call: both kinds of termination get exercised. */
		if (demo_targets(run, (*active_seen)++ % 2 == 0, room, sizeof(room), openai, sizeof(openai)) <
		    0)
			return -1;
	}
	snprintf(agent, sizeof(agent), "agent-demo-%d", (int)(i % 2) + 1);
	snprintf(number, sizeof(number), "+1555%07zu", i + 1);
	/* Older calls first, a minute apart: "newest first" listings are
	 * deterministic. */
	snprintf(minutes, sizeof(minutes), "%zu", DEMO_NCALLS - i);
	params[0] = run->tenant_id;
	params[1] = agent;
	params[2] = number;
	params[3] = dc->status;
	params[4] = room[0] ? room : NULL;
	params[5] = openai[0] ? openai : NULL;
	params[6] = dc->answered ? "t" : "f";
	params[7] = active ? "f" : "t";
	params[8] = minutes;
	res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_CALL_INSERT, 9, params);
	if (res == NULL)
		return -1;
	snprintf(id, 37, "%s", ctl_value(res, 0, "id"));
	PQclear(res);
	return 0;
}

/* The standalone calls, in one transaction; their lines are printed only
 * once it committed. */
static int demo_standalone_calls(struct demo_run *run)
{
	char ids[DEMO_NCALLS][37];
	int active_seen = 0;
	size_t i;

	if (ctl_command(DEMO_CMD, run->conn, CTL_BEGIN) < 0)
		return -1;
	for (i = 0; i < DEMO_NCALLS; i++) {
		if (demo_call_insert(run, i, &active_seen, ids[i]) < 0) {
			ctl_rollback(run->conn);
			return -1;
		}
	}
	if (ctl_command(DEMO_CMD, run->conn, CTL_COMMIT) < 0)
		return -1;
	for (i = 0; i < DEMO_NCALLS; i++)
		printf("call %s %s\n", ids[i], demo_calls[i].status);
	fflush(stdout);
	return 0;
}

/* Create a batch "batch-demo-<kind>-<8 hex>": its uuid into id (37 bytes),
 * its job_id into job_id (64 bytes).  Returns 0 or -1 (reported). */
static int demo_batch_create(struct demo_run *run, const char *kind, char *id, char *job_id)
{
	const char *params[2] = { run->tenant_id, job_id };
	char hex[9];
	PGresult *res;

	if (ctl_random_hex(hex, 4) < 0) {
		ctl_error(DEMO_CMD, "the random number generator failed");
		return -1;
	}
	snprintf(job_id, 64, "batch-demo-%s-%s", kind, hex);
	res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_BATCH_INSERT, 2, params);
	if (res == NULL)
		return -1;
	snprintf(id, 37, "%s", ctl_value(res, 0, "id"));
	PQclear(res);
	return 0;
}

/* Entries first..last of a batch, set-based: one statement, one round trip,
 * and one counter update by the statement trigger. */
static int demo_entries_insert(struct demo_run *run, const char *batch_id, long long first, long long last)
{
	char from[24], to[24];
	const char *params[3] = { batch_id, from, to };
	PGresult *res;

	snprintf(from, sizeof(from), "%lld", first);
	snprintf(to, sizeof(to), "%lld", last);
	res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_ENTRIES_INSERT, 3, params);
	PQclear(res);
	return res ? 0 : -1;
}

/* The loading progress: rewritten in place on a terminal, one line per 10 %
 * otherwise (a log file should not get a line per chunk). */
static void demo_progress(const char *job_id, long long done, long long total, int tty, int *last_decile)
{
	int percent = (int)(done * 100 / total), decile = (int)(done * 10 / total);

	if (tty) {
		fprintf(stderr, "\rloading %s: %lld/%lld entries (%d%%)", job_id, done, total, percent);
		if (done == total)
			fputc('\n', stderr);
	} else if (decile > *last_decile) {
		fprintf(stderr, "loading %s: %lld/%lld entries (%d%%)\n", job_id, done, total, percent);
		*last_decile = decile;
	}
}

/* Load total pending entries in chunks, with progress when show. */
static int demo_entries_load(struct demo_run *run, const char *batch_id, const char *job_id, long long total,
			     int show)
{
	int tty = isatty(STDERR_FILENO), last_decile = 0;
	long long done = 0, n;

	while (done < total) {
		n = total - done < DEMO_CHUNK ? total - done : DEMO_CHUNK;
		if (demo_entries_insert(run, batch_id, done + 1, done + n) < 0) {
			if (show && tty)
				fputc('\n', stderr); /* keep the error off the progress line */
			return -1;
		}
		done += n;
		if (show)
			demo_progress(job_id, done, total, tty, &last_decile);
	}
	return 0;
}

/* Report call_id as status through the dialer function; it must accept it. */
static int demo_report(struct demo_run *run, const char *call_id, const char *status)
{
	const char *params[2] = { call_id, status };
	PGresult *res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_REPORT, 2, params);
	int ok, col;

	if (res == NULL)
		return -1;
	col = ctl_column(res, "status");
	ok = !PQgetisnull(res, 0, col) && strcmp(PQgetvalue(res, 0, col), status) == 0;
	if (!ok)
		ctl_error(DEMO_CMD, "callstop_report_call(%s, %s) returned '%s'", call_id, status,
			  PQgetisnull(res, 0, col) ? "NULL" : PQgetvalue(res, 0, col));
	PQclear(res);
	return ok ? 0 : -1;
}

/* Start the call of a claimed entry as the demo dialer would; its id into
 * call_id (37 bytes).  Returns 0 or -1 (reported). */
static int demo_start(struct demo_run *run, const char *entry_id, char *call_id)
{
	char room[32], openai[40];
	const char *params[3] = { entry_id, room, NULL };
	PGresult *res;
	int col;

	if (demo_targets(run, run->room_seq % 2 == 0, room, sizeof(room), openai, sizeof(openai)) < 0)
		return -1;
	if (openai[0] != '\0')
		params[2] = openai;
	res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_START, 3, params);
	if (res == NULL)
		return -1;
	col = ctl_column(res, "call_id");
	if (PQgetisnull(res, 0, col)) {
		ctl_error(DEMO_CMD, "callstop_start_call refused entry %s", entry_id);
		PQclear(res);
		return -1;
	}
	snprintf(call_id, 37, "%s", PQgetvalue(res, 0, col));
	PQclear(res);
	return 0;
}

/*
 * Dial up to n entries of a batch the way a dialer does: claim, start, report
 * running, and then report outcome unless it is "running".  *dialed gets the
 * number dialed (fewer than n when the batch runs out).  Returns 0 or -1.
 */
static int demo_dial(struct demo_run *run, const char *batch_id, long long n, const char *outcome,
		     long long *dialed)
{
	char limit[24], call_id[37];
	const char *params[2] = { batch_id, limit };
	PGresult *claimed;
	int i, rc = 0, col;

	*dialed = 0;
	if (n == 0)
		return 0;
	snprintf(limit, sizeof(limit), "%lld", n);
	claimed = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_CLAIM, 2, params);
	if (claimed == NULL)
		return -1;
	col = ctl_column(claimed, "entry_id");
	for (i = 0; i < PQntuples(claimed) && rc == 0; i++) {
		rc = demo_start(run, PQgetvalue(claimed, i, col), call_id);
		if (rc == 0)
			rc = demo_report(run, call_id, "running");
		if (rc == 0 && strcmp(outcome, "running") != 0)
			rc = demo_report(run, call_id, outcome);
	}
	*dialed = PQntuples(claimed);
	PQclear(claimed);
	return rc;
}

/* Print "batch <job_id> <uuid> <entries> <status>" from the committed row. */
static int demo_batch_print(struct demo_run *run, const char *batch_id)
{
	const char *params[1] = { batch_id };
	PGresult *res = ctl_exec(DEMO_CMD, run->conn, CTL_DEMO_BATCH_SHOW, 1, params);

	if (res == NULL)
		return -1;
	printf("batch %s %s %s %s\n", ctl_value(res, 0, "job_id"), ctl_value(res, 0, "id"),
	       ctl_value(res, 0, "total_count"), ctl_value(res, 0, "status"));
	fflush(stdout);
	PQclear(res);
	return 0;
}

/* A batch with some calls running and some completed, in one transaction. */
static int demo_small_batch(struct demo_run *run, const struct demo_opts *o)
{
	char id[37], job_id[64];
	long long running, completed;

	if (ctl_command(DEMO_CMD, run->conn, CTL_BEGIN) < 0)
		return -1;
	if (demo_batch_create(run, "small", id, job_id) < 0 ||
	    demo_entries_load(run, id, job_id, o->small_batch_size, 0) < 0 ||
	    demo_dial(run, id, o->running, "running", &running) < 0 ||
	    demo_dial(run, id, DEMO_COMPLETED, "completed", &completed) < 0) {
		ctl_rollback(run->conn);
		return -1;
	}
	if (ctl_command(DEMO_CMD, run->conn, CTL_COMMIT) < 0)
		return -1;
	fprintf(stderr, "%s: %lld entries, %lld calls running, %lld completed\n", job_id, o->small_batch_size,
		running, completed);
	return demo_batch_print(run, id);
}

/* A large batch of pending entries, in one transaction, timed. */
static int demo_large_batch(struct demo_run *run, const struct demo_opts *o)
{
	char id[37], job_id[64];
	double start = demo_now();

	if (ctl_command(DEMO_CMD, run->conn, CTL_BEGIN) < 0)
		return -1;
	if (demo_batch_create(run, "large", id, job_id) < 0 ||
	    demo_entries_load(run, id, job_id, o->batch_size, 1) < 0) {
		ctl_rollback(run->conn);
		return -1;
	}
	if (ctl_command(DEMO_CMD, run->conn, CTL_COMMIT) < 0)
		return -1;
	fprintf(stderr, "loaded %s: %lld entries in %.2f s\n", job_id, o->batch_size, demo_now() - start);
	return demo_batch_print(run, id);
}

int ctl_demo(const struct ctl_global *g, int argc, char **argv)
{
	struct demo_opts o;
	struct demo_run run = { NULL, "", 0 };
	double start = demo_now();
	int created, rc;

	rc = demo_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	run.conn = ctl_connect(DEMO_CMD, g);
	if (run.conn == NULL)
		return CTL_EXIT_ERROR;
	rc = ctl_tenant_ensure(DEMO_CMD, run.conn, o.tenant, o.workspace_id, run.tenant_id,
			       sizeof(run.tenant_id), &created);
	if (rc == 0) {
		fprintf(stderr, "%s tenant %s (id %s)\n", created ? "created" : "using existing", o.tenant,
			run.tenant_id);
		rc = demo_standalone_calls(&run);
	}
	if (rc == 0)
		rc = demo_small_batch(&run, &o);
	if (rc == 0)
		rc = demo_large_batch(&run, &o);
	if (rc == 0)
		fprintf(stderr, "demo data created in %.2f s\n", demo_now() - start);
	PQfinish(run.conn);
	return rc < 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}
