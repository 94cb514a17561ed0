/*
 * outbox.c - see outbox.h.
 */
#include "config.h"

#include "core/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/rand.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/providers/provider.h"

#define OUTBOX_RESPONSE_MAX 1024

/* Columns of DB_OUTBOX_CLAIM_NEW and DB_OUTBOX_CLAIM_DUE_OF (common/db.c). */
enum outbox_claim_col {
	OUTBOX_COL_ID,
	OUTBOX_COL_TARGET,
	OUTBOX_COL_IDEMPOTENCY_KEY,
	OUTBOX_COL_ATTEMPTS,
	OUTBOX_COL_AGE_S,
};

/* One provider's share of the sender. */
struct outbox_slot {
	const struct provider *p;
	int in_flight;   /* transfers of this provider under way (at most outbox_concurrency) */
	int exhausted;   /* this run found nothing more to claim for it */
	/* the last answer asked for a retry, or none came yet in this process:
	 * the next success pulls the provider's waiting rows forward */
	int failing;
};

struct outbox {
	const struct conf *cfg;
	CURLM *multi;    /* kept for the process: its connection cache */
	size_t nslots;
	struct outbox_slot *slots;   /* one per provider_table[] entry */
};

/* One claimed row on its way out. */
struct outbox_xfer {
	struct outbox_xfer *next;    /* in the list of finished transfers */
	struct outbox_slot *slot;
	long long id;
	long long age_s;
	int attempts;
	char target[256];
	char idempotency_key[300];
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char response[OUTBOX_RESPONSE_MAX];
	size_t response_len;
	enum provider_verdict verdict;
	char error[256];
};

/* One call of outbox_send() or outbox_drain(). */
struct outbox_run {
	const long long *ids;        /* outbox_send: these rows; NULL: the due ones */
	size_t n;
	enum outbox_result *results; /* outbox_send: results[i] for ids[i] */
	long long deadline;          /* monotonic ms: no claim after it */
	int budget;                  /* rows that may still be claimed */
	int processed;
	struct outbox_xfer *finished;
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

long outbox_backoff_ms(const struct conf *cfg, int attempts)
{
	double d = cfg->outbox_backoff_base_ms;
	unsigned short r = 0;
	int i;

	for (i = 1; i < attempts && d < cfg->outbox_backoff_max_ms; i++)
		d *= 2;
	if (d > cfg->outbox_backoff_max_ms)
		d = cfg->outbox_backoff_max_ms;
	/* jitter, so that rows failed together do not retry together */
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return (long)(d * (0.5 + 0.5 * r / 65535.0));
}

static size_t outbox_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct outbox_xfer *x = userdata;
	size_t n = size * nmemb, room = sizeof(x->response) - 1 - x->response_len;

	memcpy(x->response + x->response_len, ptr, n < room ? n : room);
	x->response_len += n < room ? n : room;
	x->response[x->response_len] = '\0';
	return n;
}

/* Build the HTTP request of x.  Returns 0 or -1 (x->error says why). */
static int outbox_prepare(struct outbox *ob, struct outbox_xfer *x)
{
	const struct conf *cfg = ob->cfg;
	const struct provider *p = x->slot->p;

	x->easy = curl_easy_init();
	if (x->easy == NULL) {
		snprintf(x->error, sizeof(x->error), "out of memory");
		return -1;
	}
	/* a reload may have removed the provider since the row was queued */
	if (!p->enabled(cfg)) {
		snprintf(x->error, sizeof(x->error), "%s not configured", p->label);
		return -1;
	}
	if (p->prepare(x->easy, cfg, x->target, x->idempotency_key, &x->headers, &x->body) < 0) {
		snprintf(x->error, sizeof(x->error), "cannot build the %s request", p->name);
		return -1;
	}
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, outbox_on_data);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->outbox_connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)cfg->outbox_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "callstop/" PACKAGE_VERSION);
	return 0;
}

static void outbox_xfer_free(struct outbox_xfer *x)
{
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
}

/* Read the verdict of a finished transfer; its slot learns whether the
 * provider answers. */
static void outbox_finish(struct outbox_xfer *x, CURLcode code)
{
	long status = 0;

	if (code != CURLE_OK) {
		x->verdict = PROVIDER_RETRY;
		snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(code));
	} else {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		x->verdict = x->slot->p->verdict(status, x->response);
		if (x->verdict != PROVIDER_DONE || status >= 300)
			snprintf(x->error, sizeof(x->error), "HTTP %ld: %.200s", status, x->response);
	}
	if (x->verdict == PROVIDER_RETRY)
		x->slot->failing = 1;
}

/* The state written for x: done, pending (retried later: *delay ms) or
 * failed (the dead letter: permanent, or too old, or too many attempts). */
static const char *outbox_state_of(const struct outbox *ob, const struct outbox_xfer *x, long *delay)
{
	const struct conf *cfg = ob->cfg;

	*delay = 0;
	if (x->verdict == PROVIDER_DONE)
		return "done";
	if (x->verdict == PROVIDER_PERMANENT || x->attempts >= cfg->outbox_max_attempts ||
	    x->age_s >= cfg->outbox_max_age) {
		log_warn("outbox %lld: %s %s: %s; dead-lettered after %d attempt(s) in %lld s", x->id,
			 x->slot->p->name, x->target, x->error, x->attempts, x->age_s);
		return "failed";
	}
	*delay = outbox_backoff_ms(cfg, x->attempts);
	log_warn("outbox %lld: %s %s: %s; retry %d/%d in %ld ms", x->id, x->slot->p->name, x->target, x->error,
		 x->attempts + 1, cfg->outbox_max_attempts, *delay);
	return "pending";
}

/* Write what finished since the last call, in one statement, and give its
 * rows' results to the caller of outbox_send(). */
static void outbox_record(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	cJSON *arr = cJSON_CreateArray();
	struct outbox_xfer *x, *next;
	const char *params[1];
	char *json;
	PGresult *res;
	size_t i, n = 0;

	for (x = run->finished; x != NULL; x = x->next) {
		cJSON *o = cJSON_CreateObject();
		long delay;
		const char *state = outbox_state_of(ob, x, &delay);

		metrics_outbox(x->slot->p->name, state);
		for (i = 0; run->results != NULL && i < run->n; i++)
			if (run->ids[i] == x->id)
				run->results[i] = state[0] == 'd' ? OUTBOX_RESULT_DONE
						  : state[0] == 'f' ? OUTBOX_RESULT_FAILED : OUTBOX_RESULT_QUEUED;
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
		log_error("outbox: cannot record %zu result(s); the rows will be retried when their claim expires", n);
	PQclear(res);
	free(json);
	for (x = run->finished; x != NULL; x = next) {
		next = x->next;
		outbox_xfer_free(x);
	}
	run->finished = NULL;
}

/* After an outage the first success to a provider makes its waiting rows
 * due now, and wakes the retry child for them (sql/008_outbox.sql). */
static void outbox_pull_forward(struct db *db, struct outbox_slot *s)
{
	const char *params[1] = { s->p->name };
	PGresult *res = db_exec(db, DB_OUTBOX_PULL_FORWARD, 1, params);
	long n;

	if (res == NULL)
		return;   /* tried again at the next success */
	s->failing = 0;
	n = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	if (n > 0) {
		log_info("outbox: %s answers again; %ld waiting row(s) due now", s->p->label, n);
		s->exhausted = 0;   /* a drain takes them in this run */
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

/* The ids of run as a PostgreSQL array literal ("{1,2,3}"): bigints only,
 * nothing to quote.  NULL on ENOMEM. */
static char *outbox_ids_param(const struct outbox_run *run)
{
	size_t i, len = 3 + run->n * 21;
	char *s = malloc(len), *p = s;

	if (s == NULL)
		return NULL;
	*p++ = '{';
	for (i = 0; i < run->n; i++)
		p += snprintf(p, len - (size_t)(p - s), "%s%lld", i ? "," : "", run->ids[i]);
	snprintf(p, len - (size_t)(p - s), "}");
	return s;
}

/* Start the transfers of the claimed rows of one provider; a row whose
 * request cannot be built is finished at once (permanent). */
static void outbox_start(struct outbox *ob, struct outbox_slot *s, PGresult *claimed, struct outbox_run *run)
{
	int i;

	for (i = 0; i < PQntuples(claimed); i++) {
		struct outbox_xfer *x = calloc(1, sizeof(*x));

		if (x == NULL)
			continue;   /* left claimed: retried when the claim expires */
		x->slot = s;
		x->id = strtoll(PQgetvalue(claimed, i, OUTBOX_COL_ID), NULL, 10);
		snprintf(x->target, sizeof(x->target), "%s", PQgetvalue(claimed, i, OUTBOX_COL_TARGET));
		snprintf(x->idempotency_key, sizeof(x->idempotency_key), "%s",
			 PQgetvalue(claimed, i, OUTBOX_COL_IDEMPOTENCY_KEY));
		x->attempts = atoi(PQgetvalue(claimed, i, OUTBOX_COL_ATTEMPTS));
		x->age_s = strtoll(PQgetvalue(claimed, i, OUTBOX_COL_AGE_S), NULL, 10);
		run->processed++;
		if (outbox_prepare(ob, x) < 0 || curl_multi_add_handle(ob->multi, x->easy) != CURLM_OK) {
			x->verdict = PROVIDER_PERMANENT;
			x->next = run->finished;
			run->finished = x;
			continue;
		}
		s->in_flight++;
	}
}

/* Claim up to want rows of slot s for run and start them.  A claim that
 * finds fewer rows than it asked for leaves the provider exhausted. */
static void outbox_claim(struct outbox *ob, struct db *db, struct outbox_slot *s, int want, struct outbox_run *run)
{
	char limit[16], lease[16], *ids = NULL;
	PGresult *claimed;

	snprintf(limit, sizeof(limit), "%d", want);
	outbox_lease(ob, lease, sizeof(lease));
	if (run->ids != NULL) {
		const char *params[4] = { NULL, s->p->name, limit, lease };

		params[0] = ids = outbox_ids_param(run);
		claimed = ids ? db_exec(db, DB_OUTBOX_CLAIM_NEW, 4, params) : NULL;
	} else {
		const char *params[3] = { s->p->name, limit, lease };

		claimed = db_exec(db, DB_OUTBOX_CLAIM_DUE_OF, 3, params);
	}
	free(ids);
	if (claimed == NULL || PQntuples(claimed) < want)
		s->exhausted = 1;
	if (claimed == NULL)
		return;
	run->budget -= PQntuples(claimed);
	outbox_start(ob, s, claimed, run);
	PQclear(claimed);
}

/* Claim for every provider that has room: at most outbox_concurrency of its
 * transfers at once, topped up once half of them are free, so that a
 * provider that hangs holds its own slots and no one else's. */
static void outbox_refill(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	int conc = ob->cfg->outbox_concurrency;
	size_t i;

	for (i = 0; i < ob->nslots; i++) {
		struct outbox_slot *s = &ob->slots[i];
		int room = conc - s->in_flight;

		if (room > run->budget)
			room = run->budget;
		if (s->exhausted || room <= 0 || (s->in_flight > 0 && room < (conc + 1) / 2))
			continue;
		if (clock_monotonic_ms() >= run->deadline)
			return;
		outbox_claim(ob, db, s, room, run);
	}
}

/* Collect the transfers that ended. */
static void outbox_collect(struct outbox *ob, struct outbox_run *run)
{
	CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(ob->multi, &left)) != NULL) {
		struct outbox_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		outbox_finish(x, msg->data.result);
		curl_multi_remove_handle(ob->multi, x->easy);
		x->slot->in_flight--;
		x->next = run->finished;
		run->finished = x;
	}
}

/*
 * Claim, send and record until nothing is left to claim (or the deadline or
 * the budget is reached) and nothing is in flight.  Each provider has its
 * own slots; each row is recorded as soon as its transfer ends, with the
 * others that ended in the same turn of the loop.
 */
static void outbox_go(struct outbox *ob, struct db *db, struct outbox_run *run)
{
	size_t i;

	for (i = 0; i < ob->nslots; i++)
		ob->slots[i].exhausted = 0;
	for (;;) {
		int running = 0, in_flight = 0, pull = 0;
		struct outbox_xfer *x;

		outbox_refill(ob, db, run);
		for (i = 0; i < ob->nslots; i++)
			in_flight += ob->slots[i].in_flight;
		if (in_flight == 0 && run->finished == NULL)
			break;
		if (in_flight > 0) {
			curl_multi_perform(ob->multi, &running);
			outbox_collect(ob, run);
		}
		for (x = run->finished; x != NULL; x = x->next)
			if (x->verdict == PROVIDER_DONE && x->slot->failing)
				x->slot->failing = -1;   /* a success after failures */
		if (run->finished != NULL)
			outbox_record(ob, db, run);
		for (i = 0; i < ob->nslots; i++)
			if (ob->slots[i].failing < 0) {
				outbox_pull_forward(db, &ob->slots[i]);
				pull = 1;
			}
		if (in_flight > 0 && !pull)
			curl_multi_poll(ob->multi, NULL, 0, 100, NULL);
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
void outbox_send(struct outbox *ob, struct db *db, const long long *ids, size_t n, enum outbox_result *results)
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
	outbox_go(ob, db, &run);
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
