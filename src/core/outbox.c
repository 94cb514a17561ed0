/*
 * outbox.c - see outbox.h.
 */
#include "core/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/providers/provider.h"
#include "core/providers/registry.h"
#include "core/transfer.h"

/* Answers that come within this many ms of each other are recorded in one
 * statement. */
#define OUTBOX_RECORD_WINDOW_MS 20

/* One provider's share of the sender. */
struct outbox_slot {
	const struct provider *p;
	int in_flight; /* transfers of this provider under way (at most outbox_concurrency) */
	int exhausted; /* this run found nothing more to claim for it */
	/* the last answer asked for a retry, or none came yet in this process:
	 * the next success pulls the provider's waiting rows forward */
	int failing;
	/* outbox_send: this provider's rows among the ids, not claimed yet */
	long long *ids;
	size_t nids, next;
};

struct outbox {
	const struct conf *cfg;
	CURLM *multi; /* kept for the process: its connection cache */
	size_t nslots;
	struct outbox_slot *slots; /* one per provider_table[] entry */
	void (*tick)(void *arg);   /* outbox_set_tick() */
	void *tick_arg;
};

/* One call of outbox_send() or outbox_drain(). */
struct outbox_run {
	const long long *ids; /* outbox_send: these rows; NULL: the due ones */
	size_t n;
	enum outbox_result *results; /* outbox_send: results[i] for ids[i] */
	long long deadline;          /* monotonic ms: no claim after it */
	int budget;                  /* rows that may still be claimed */
	long long *claim;            /* outbox_send: room for the ids of one claim */
	int processed;
	struct transfer *finished;
};

struct outbox *outbox_new(const struct conf *cfg)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	size_t i;

	if (ob == NULL)
		return NULL;
	ob->cfg = cfg;
	ob->nslots = provider_count();
	ob->slots = calloc(ob->nslots, sizeof(*ob->slots));
	ob->multi = curl_multi_init();
	if (ob->slots == NULL || ob->multi == NULL) {
		outbox_free(ob);
		return NULL;
	}
	for (i = 0; i < ob->nslots; i++) {
		ob->slots[i].p = provider_table[i];
		ob->slots[i].failing = 1;
	}
	/* The slots bound the transfers, provider by provider: a limit of
	 * curl's would be shared by providers on one host.  Connections are
	 * kept for the next cancel, as many as can be in use at once. */
	curl_multi_setopt(ob->multi, CURLMOPT_MAXCONNECTS, (long)(cfg->outbox_concurrency * (int)ob->nslots));
	return ob;
}

void outbox_free(struct outbox *ob)
{
	if (ob == NULL)
		return;
	if (ob->multi != NULL)
		curl_multi_cleanup(ob->multi);
	free(ob->slots);
	free(ob);
}

/* The state written for x: done, pending (retried later: *delay ms) or
 * failed (the dead letter: permanent, or too old, or too many attempts). */
static const char *outbox_state_of(const struct outbox *ob, const struct transfer *x, long *delay)
{
	const struct conf *cfg = ob->cfg;

	*delay = 0;
	if (x->verdict == PROVIDER_DONE)
		return x->p->verifies ? "sent" : "done"; /* SPEC 11: sent until verified */
	if (x->verdict == PROVIDER_PERMANENT || x->attempts >= cfg->outbox_max_attempts ||
	    x->age_s >= cfg->outbox_max_age) {
		log_warn("outbox %lld: %s %s: %s; dead-lettered after %d attempt(s) in %lld s", x->id,
			 x->p->name, x->target, x->error, x->attempts, x->age_s);
		return "failed";
	}
	*delay = transfer_backoff_ms(cfg->outbox_backoff_base_ms, cfg->outbox_backoff_max_ms, x->attempts);
	log_warn("outbox %lld: %s %s: %s; retry %d/%d in %ld ms", x->id, x->p->name, x->target, x->error,
		 x->attempts + 1, cfg->outbox_max_attempts, *delay);
	return "pending";
}

/* Write what finished since the last call, in one statement, and give its
 * rows' results to the caller of outbox_send(). */
static void outbox_record(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	cJSON *arr = cJSON_CreateArray();
	struct transfer *x, *next;
	const char *params[1];
	char *json;
	PGresult *res;
	size_t i, n = 0;

	for (x = run->finished; x != NULL; x = x->next) {
		cJSON *o = cJSON_CreateObject();
		long delay;
		const char *state = outbox_state_of(ob, x, &delay);

		/* the provider accepted it: the cancel's message says so (SPEC 11) */
		metrics_outbox(x->p->name, state[0] == 's' ? "done" : state);
		for (i = 0; run->results != NULL && i < run->n; i++)
			if (run->ids[i] == x->id)
				run->results[i] = state[0] == 'd' || state[0] == 's' ? OUTBOX_RESULT_DONE
						  : state[0] == 'f'                  ? OUTBOX_RESULT_FAILED
										     : OUTBOX_RESULT_QUEUED;
		cJSON_AddNumberToObject(o, "id", (double)x->id);
		cJSON_AddStringToObject(o, "state", state);
		json_add_string_or_null(o, "last_error", x->error[0] ? x->error : NULL);
		cJSON_AddNumberToObject(o, "delay_ms", (double)delay);
		cJSON_AddItemToArray(arr, o);
		n++;
	}
	json = json_print(arr);
	cJSON_Delete(arr);
	params[0] = json;
	res = json ? db_exec(db, DB_OUTBOX_RESULT, 1, params) : NULL;
	if (res == NULL)
		log_error(
			"outbox: cannot record %zu result(s); the rows will be retried when their claim expires",
			n);
	metrics_silence_of(res);
	PQclear(res);
	free(json);
	for (x = run->finished; x != NULL; x = next) {
		next = x->next;
		transfer_free(x);
	}
	run->finished = NULL;
}

/* After an outage the first success to a provider makes its waiting rows
 * due now, and wakes the retry child for them (sql/007_outbox.sql). */
static void outbox_pull_forward(struct db *db, struct outbox_slot *s)
{
	const char *params[1] = { s->p->name };
	PGresult *res = db_exec(db, DB_OUTBOX_PULL_FORWARD, 1, params);
	long n;

	if (res == NULL)
		return; /* tried again at the next success */
	s->failing = 0;
	n = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, OUTBOX_PULL_FORWARD_COUNT), NULL, 10) : 0;
	if (n > 0) {
		log_info("outbox: %s answers again; %ld waiting row(s) due now", s->p->label, n);
		s->exhausted = 0; /* a drain takes them in this run */
	}
	PQclear(res);
}

/* A row claimed now is sent at once and ends within outbox_timeout_ms; the
 * claim outlasts that by a margin, so that no one else takes the row while
 * it is on its way out.  Seconds, as text. */
static void outbox_lease(const struct outbox *ob, char *buf, size_t len)
{
	snprintf(buf, len, "%d", (ob->cfg->outbox_timeout_ms + 999) / 1000 + 10);
}

/* ids[0..n) as a PostgreSQL array literal ("{1,2,3}"): bigints only,
 * nothing to quote.  NULL on ENOMEM. */
static char *outbox_ids_param(const long long *ids, size_t n)
{
	size_t i, len = 3 + n * 21;
	char *s = malloc(len), *p = s;

	if (s == NULL)
		return NULL;
	*p++ = '{';
	for (i = 0; i < n; i++)
		p += snprintf(p, len - (size_t)(p - s), "%s%lld", i ? "," : "", ids[i]);
	snprintf(p, len - (size_t)(p - s), "}");
	return s;
}

/* The slot of the provider named name, or NULL. */
static struct outbox_slot *outbox_slot_of(struct outbox *ob, const char *name)
{
	size_t i;

	for (i = 0; i < ob->nslots; i++)
		if (strcmp(ob->slots[i].p->name, name) == 0)
			return &ob->slots[i];
	return NULL;
}

/* Start the transfers of claimed rows, each on its provider's slot; a row
 * whose request cannot be built is finished at once (permanent). */
static void outbox_start(struct outbox *ob, PGresult *claimed, struct outbox_run *run)
{
	int i;

	run->budget -= PQntuples(claimed);
	for (i = 0; i < PQntuples(claimed); i++) {
		struct outbox_slot *s = outbox_slot_of(ob, PQgetvalue(claimed, i, OUTBOX_CLAIM_PROVIDER));
		struct transfer *x = s != NULL ? calloc(1, sizeof(*x)) : NULL;

		if (x == NULL)
			continue; /* left claimed: retried when the claim expires */
		x->p = s->p;
		x->slot = (size_t)(s - ob->slots);
		x->id = strtoll(PQgetvalue(claimed, i, OUTBOX_CLAIM_ID), NULL, 10);
		snprintf(x->target, sizeof(x->target), "%s", PQgetvalue(claimed, i, OUTBOX_CLAIM_TARGET));
		snprintf(x->idempotency_key, sizeof(x->idempotency_key), "%s",
			 PQgetvalue(claimed, i, OUTBOX_CLAIM_IDEMPOTENCY_KEY));
		x->attempts = atoi(PQgetvalue(claimed, i, OUTBOX_CLAIM_ATTEMPTS));
		x->age_s = strtoll(PQgetvalue(claimed, i, OUTBOX_CLAIM_AGE_S), NULL, 10);
		run->processed++;
		if (transfer_prepare(x, ob->cfg) < 0 ||
		    curl_multi_add_handle(ob->multi, x->easy) != CURLM_OK) {
			x->verdict = PROVIDER_PERMANENT;
			x->next = run->finished;
			run->finished = x;
			continue;
		}
		s->in_flight++;
	}
}

/* outbox_send: claim ids[0..n) (those still never tried) and start them. */
static void outbox_claim_ids(struct outbox *ob, struct db *db, const long long *ids, size_t n,
			     struct outbox_run *run)
{
	char lease[16], *param = outbox_ids_param(ids, n);
	const char *params[2] = { param, lease };
	PGresult *claimed;

	outbox_lease(ob, lease, sizeof(lease));
	claimed = param != NULL ? db_exec(db, DB_OUTBOX_CLAIM_NEW, 2, params) : NULL;
	free(param);
	if (claimed != NULL)
		outbox_start(ob, claimed, run);
	PQclear(claimed);
}

/* outbox_drain: claim up to want due rows of slot s and start them; fewer
 * than asked for leave the provider exhausted for this run. */
static void outbox_claim_due(struct outbox *ob, struct db *db, struct outbox_slot *s, int want,
			     struct outbox_run *run)
{
	char limit[16], lease[16];
	const char *params[3] = { s->p->name, limit, lease };
	PGresult *claimed;

	snprintf(limit, sizeof(limit), "%d", want);
	outbox_lease(ob, lease, sizeof(lease));
	claimed = db_exec(db, DB_OUTBOX_CLAIM_DUE_OF, 3, params);
	if (claimed == NULL || PQntuples(claimed) < want)
		s->exhausted = 1;
	if (claimed != NULL)
		outbox_start(ob, claimed, run);
	PQclear(claimed);
}

/*
 * Claim for every provider that has room: at most outbox_concurrency of its
 * transfers at once, topped up once half of them are free, so that a
 * provider that hangs holds its own slots and no one else's.  outbox_send
 * takes each provider's next ids (sorted out by outbox_sort(); one taken
 * meanwhile by the retry child is skipped) in one claim for all providers.
 */
static void outbox_refill(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	int conc = ob->cfg->outbox_concurrency;
	size_t i, n = 0;

	for (i = 0; i < ob->nslots; i++) {
		struct outbox_slot *s = &ob->slots[i];
		int room = conc - s->in_flight;

		if (room > run->budget)
			room = run->budget;
		if (s->exhausted || room <= 0 || (s->in_flight > 0 && room < (conc + 1) / 2))
			continue;
		if (clock_monotonic_ms() >= run->deadline)
			break;
		if (run->ids == NULL) {
			outbox_claim_due(ob, db, s, room, run);
			continue;
		}
		for (; room > 0 && s->next < s->nids; room--)
			run->claim[n++] = s->ids[s->next++];
		s->exhausted = s->next == s->nids;
	}
	if (n > 0)
		outbox_claim_ids(ob, db, run->claim, n, run);
}

/* Collect the transfers that ended. */
static void outbox_collect(struct outbox *ob, struct outbox_run *run)
{
	CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(ob->multi, &left)) != NULL) {
		struct transfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		transfer_finish(x, msg->data.result);
		curl_multi_remove_handle(ob->multi, x->easy);
		ob->slots[x->slot].in_flight--;
		if (x->verdict == PROVIDER_RETRY)
			ob->slots[x->slot].failing = 1;
		x->next = run->finished;
		run->finished = x;
	}
}

/* After a success to a provider that failed (or was not heard from yet in
 * this process), pull its waiting rows forward.  Returns 1 if it did. */
static int outbox_after_success(struct db *db, struct outbox *ob, const struct outbox_run *run)
{
	const struct transfer *x;
	int pulled = 0;
	size_t i;

	for (x = run->finished; x != NULL; x = x->next)
		if (x->verdict == PROVIDER_DONE && ob->slots[x->slot].failing)
			ob->slots[x->slot].failing = -1;
	for (i = 0; i < ob->nslots; i++)
		if (ob->slots[i].failing < 0) {
			outbox_pull_forward(db, &ob->slots[i]);
			pulled = 1;
		}
	return pulled;
}

/*
 * Claim, send and record until nothing is left to claim (or the deadline or
 * the budget is reached) and nothing is in flight.  Each provider has its
 * own slots.  Each row is recorded as soon as its transfer ends, together
 * with those that end within OUTBOX_RECORD_WINDOW_MS of it (one statement,
 * one commit, for the many answers of a batch that come in together).
 */
static void outbox_go(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	long long first_done = 0; /* when the oldest unrecorded transfer ended */
	size_t i;

	for (i = 0; i < ob->nslots; i++)
		ob->slots[i].exhausted = run->ids != NULL && ob->slots[i].nids == 0;
	for (;;) {
		int running = 0, in_flight = 0, wait_ms = 100;
		long long now;

		outbox_refill(ob, db, run);
		for (i = 0; i < ob->nslots; i++)
			in_flight += ob->slots[i].in_flight;
		if (in_flight == 0 && run->finished == NULL)
			break;
		if (in_flight > 0) {
			curl_multi_perform(ob->multi, &running);
			outbox_collect(ob, run);
		}
		if (run->finished != NULL) {
			/* the freed slots' next rows go out before the record */
			outbox_refill(ob, db, run);
			curl_multi_perform(ob->multi, &running);
		}
		now = clock_monotonic_ms();
		if (run->finished != NULL && first_done == 0)
			first_done = now;
		if (run->finished != NULL &&
		    (in_flight == 0 || now - first_done >= OUTBOX_RECORD_WINDOW_MS || running == 0)) {
			if (outbox_after_success(db, ob, run))
				wait_ms = 0; /* claim the rows pulled forward */
			outbox_record(ob, db, run);
			first_done = 0;
		} else if (run->finished != NULL) {
			wait_ms = (int)(first_done + OUTBOX_RECORD_WINDOW_MS - now);
		}
		if (running > 0 && wait_ms > 0)
			curl_multi_poll(ob->multi, NULL, 0, wait_ms, NULL);
		if (ob->tick != NULL)
			ob->tick(ob->tick_arg);
	}
}

void outbox_set_tick(struct outbox *ob, void (*tick)(void *arg), void *arg)
{
	ob->tick = tick;
	ob->tick_arg = arg;
}

/* Share out ids[0..n) by provider (the slots' ids): the rows never tried.
 * Returns 0, or -1 if the database failed (the rows are left to the retry
 * child). */
static int outbox_sort(struct outbox *ob, struct db *db, const long long *ids, size_t n)
{
	char *param = outbox_ids_param(ids, n);
	const char *params[1] = { param };
	PGresult *res = param ? db_exec(db, DB_OUTBOX_OF_PROVIDERS, 1, params) : NULL;
	size_t i, j;
	int rc = -1;

	free(param);
	if (res == NULL)
		return -1;
	for (j = 0; j < ob->nslots; j++)
		if ((ob->slots[j].ids = calloc(n, sizeof(long long))) == NULL)
			goto out;
	for (i = 0; i < (size_t)PQntuples(res); i++) {
		struct outbox_slot *s =
			outbox_slot_of(ob, PQgetvalue(res, (int)i, OUTBOX_OF_PROVIDERS_PROVIDER));

		if (s != NULL)
			s->ids[s->nids++] =
				strtoll(PQgetvalue(res, (int)i, OUTBOX_OF_PROVIDERS_ID), NULL, 10);
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

static void outbox_unsort(struct outbox *ob)
{
	size_t j;

	for (j = 0; j < ob->nslots; j++) {
		free(ob->slots[j].ids);
		ob->slots[j].ids = NULL;
		ob->slots[j].nids = ob->slots[j].next = 0;
	}
}

/*
 * The worker answers its client only after this.  Rows are claimed provider
 * by provider as slots free up, and not after outbox_timeout_ms: what was not
 * claimed by then stays for the retry child (it is due once the grace period
 * of a new row is over).  A provider that hangs delays the answer by at most
 * twice outbox_timeout_ms, however many rows, and the other providers' rows
 * go out meanwhile.
 */
void outbox_send(struct outbox *ob, struct db *db, const long long *ids, size_t n,
		 enum outbox_result *results)
{
	struct outbox_run run = { 0 };
	size_t i;

	for (i = 0; i < n; i++)
		results[i] = OUTBOX_RESULT_QUEUED;
	if (ob == NULL || n == 0)
		return;
	run.ids = ids;
	run.n = n;
	run.results = results;
	run.deadline = clock_monotonic_ms() + ob->cfg->outbox_timeout_ms;
	run.budget = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
	if (n <= (size_t)ob->cfg->outbox_concurrency) {
		/* the common case (a call or a few): they all fit in the
		 * slots, one claim */
		outbox_claim_ids(ob, db, ids, n, &run);
		outbox_go(ob, db, &run);
	} else if ((run.claim = calloc(n, sizeof(*run.claim))) != NULL && outbox_sort(ob, db, ids, n) == 0) {
		outbox_go(ob, db, &run);
	}
	outbox_unsort(ob);
	free(run.claim);
}

int outbox_drain(struct outbox *ob, struct db *db, int limit)
{
	struct outbox_run run = { 0 };

	if (db_connect(db) < 0)
		return -1;
	run.deadline = clock_monotonic_ms() + ob->cfg->outbox_timeout_ms;
	run.budget = limit;
	outbox_go(ob, db, &run);
	return run.processed;
}
