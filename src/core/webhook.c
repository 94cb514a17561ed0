/*
 * webhook.c - the sender of the delivery child (see webhook.h).
 */
#include "config.h"

#include "core/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/transfer.h"

/* Bytes of last_error. */
#define WEBHOOK_ERROR_MAX 256
/* A claim outlasts the request by this much, s. */
#define WEBHOOK_LEASE_MARGIN_S 5
/* Answers that come within this many ms of the first are recorded in one
 * statement (at 32 in flight and 20 ms an answer, one every 0.6 ms). */
#define WEBHOOK_RECORD_WINDOW_MS 20

/* One claimed delivery on its way out. */
struct webhook_send {
	struct webhook_send *next;
	long long id;          /* webhook_deliveries.id */
	long long endpoint_id; /* for the log: the URL may carry a token */
	int attempts;          /* this one included */
	long long age_s;       /* since it was queued (or replayed) */
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	long status; /* HTTP status, 0 = none */
	char error[WEBHOOK_ERROR_MAX];
	struct transfer_answer response; /* its start, for last_error */
};

struct webhook_sender {
	const struct conf *cfg;
	CURLM *multi; /* kept for the process: its connection cache */
	int in_flight;
	struct webhook_send *finished;
	int announced; /* announced cancels the last claim wrote as events first */
};

struct webhook_sender *webhook_sender_new(const struct conf *cfg)
{
	struct webhook_sender *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return NULL;
	ws->cfg = cfg;
	ws->multi = curl_multi_init();
	if (ws->multi == NULL) {
		free(ws);
		return NULL;
	}
	/* one connection per transfer that can be in flight, kept between
	 * rounds: a receiver gets the same connections back */
	curl_multi_setopt(ws->multi, CURLMOPT_MAXCONNECTS, (long)cfg->webhook_concurrency);
	return ws;
}

static void webhook_send_free(struct webhook_send *x)
{
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
}

void webhook_sender_free(struct webhook_sender *ws)
{
	if (ws == NULL)
		return;
	curl_multi_cleanup(ws->multi);
	free(ws);
}

/* The headers of one attempt (Standard Webhooks 1.0): both signatures
 * during a rotation's overlap, the new one first.  Returns 0 or -1. */
static int webhook_headers(struct webhook_send *x, const char *uid, const char *secret, const char *previous)
{
	char sig[WEBHOOK_SIGNATURE_MAX], sig2[WEBHOOK_SIGNATURE_MAX], line[512];
	long long ts = (long long)time(NULL);
	size_t blen = strlen(x->body);
	struct curl_slist *h = NULL;

	if (webhook_sign(secret, uid, ts, x->body, blen, sig, sizeof(sig)) < 0 ||
	    (previous != NULL && webhook_sign(previous, uid, ts, x->body, blen, sig2, sizeof(sig2)) < 0)) {
		snprintf(x->error, sizeof(x->error), "cannot sign: the endpoint's secret is not base64");
		return -1;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", uid);
	h = h ? curl_slist_append(h, line) : NULL;
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", ts);
	h = h ? curl_slist_append(h, line) : NULL;
	snprintf(line, sizeof(line), "webhook-signature: %s%s%s", sig, previous ? " " : "",
		 previous ? sig2 : "");
	h = h ? curl_slist_append(h, line) : NULL;
	/* no "Expect: 100-continue" round trip for a body over 1 KiB */
	h = h ? curl_slist_append(h, "Expect:") : NULL;
	x->headers = h;
	if (h == NULL)
		snprintf(x->error, sizeof(x->error), "out of memory");
	return h != NULL ? 0 : -1;
}

/* Build and start row i of claimed; one that cannot be built is finished
 * at once (and retried). */
static void webhook_start(struct webhook_sender *ws, PGresult *claimed, int i)
{
	const struct conf *cfg = ws->cfg;
	struct webhook_send *x = calloc(1, sizeof(*x));
	const char *prev;

	if (x == NULL)
		return; /* left claimed: sent again when the claim expires */
	x->id = strtoll(PQgetvalue(claimed, i, WEBHOOK_CLAIM_ID), NULL, 10);
	x->endpoint_id = strtoll(PQgetvalue(claimed, i, WEBHOOK_CLAIM_ENDPOINT_ID), NULL, 10);
	x->attempts = atoi(PQgetvalue(claimed, i, WEBHOOK_CLAIM_ATTEMPTS));
	x->age_s = strtoll(PQgetvalue(claimed, i, WEBHOOK_CLAIM_AGE_S), NULL, 10);
	x->body = strdup(PQgetvalue(claimed, i, WEBHOOK_CLAIM_BODY));
	prev = PQgetisnull(claimed, i, WEBHOOK_CLAIM_PREVIOUS_SECRET)
		       ? NULL
		       : PQgetvalue(claimed, i, WEBHOOK_CLAIM_PREVIOUS_SECRET);
	x->easy = curl_easy_init();
	if (x->body == NULL || x->easy == NULL ||
	    webhook_headers(x, PQgetvalue(claimed, i, WEBHOOK_CLAIM_UID),
			    PQgetvalue(claimed, i, WEBHOOK_CLAIM_SECRET), prev) < 0) {
		if (x->error[0] == '\0')
			snprintf(x->error, sizeof(x->error), "out of memory");
		x->next = ws->finished;
		ws->finished = x;
		return;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, PQgetvalue(claimed, i, WEBHOOK_CLAIM_URL));
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	transfer_options(x->easy, x, transfer_keep_start, &x->response, (long)cfg->webhook_connect_timeout_ms,
			 (long)cfg->webhook_timeout_ms);
	if (curl_multi_add_handle(ws->multi, x->easy) != CURLM_OK) {
		snprintf(x->error, sizeof(x->error), "cannot start the request");
		x->next = ws->finished;
		ws->finished = x;
		return;
	}
	ws->in_flight++;
}

/* Claim up to want due deliveries and start them.  Returns the number
 * claimed, or -1 if the database failed. */
static int webhook_claim(struct webhook_sender *ws, struct db *db, int want)
{
	char limit[16], lease[16];
	const char *params[2] = { limit, lease };
	PGresult *claimed;
	int i, n;

	snprintf(limit, sizeof(limit), "%d", want);
	snprintf(lease, sizeof(lease), "%d",
		 (ws->cfg->webhook_timeout_ms + 999) / 1000 + WEBHOOK_LEASE_MARGIN_S);
	/* the cancels announced since the last claim become events first
	 * (sql/014_webhook_announce.sql) */
	ws->announced = 0;
	claimed = db_exec(db, DB_WEBHOOK_ANNOUNCE, 1, params);
	if (claimed == NULL)
		return -1;
	ws->announced = atoi(PQgetvalue(claimed, 0, 0));
	PQclear(claimed);
	claimed = db_exec(db, DB_WEBHOOK_CLAIM, 2, params);
	if (claimed == NULL)
		return -1;
	n = PQntuples(claimed);
	for (i = 0; i < n; i++)
		webhook_start(ws, claimed, i);
	PQclear(claimed);
	return n;
}

/* The state written for x: delivered, failed, or pending again (*delay ms). */
static const char *webhook_state_of(const struct webhook_sender *ws, const struct webhook_send *x,
				    long *delay)
{
	*delay = 0;
	if (x->status >= 200 && x->status < 300) {
		metrics_webhook("delivered");
		return "delivered";
	}
	if (x->status == 410) {
		log_warn("webhook delivery %lld: endpoint %lld answered 410 Gone; endpoint disabled", x->id,
			 x->endpoint_id);
		metrics_webhook("gone");
		return "failed";
	}
	if (x->age_s >= ws->cfg->webhook_max_age) {
		log_warn("webhook delivery %lld: endpoint %lld: %s; failed after %d attempt(s) in %lld s",
			 x->id, x->endpoint_id, x->error, x->attempts, x->age_s);
		metrics_webhook("failed");
		return "failed";
	}
	*delay = transfer_backoff_ms(ws->cfg->webhook_backoff_base_ms, ws->cfg->webhook_backoff_max_ms,
				     x->attempts);
	log_info("webhook delivery %lld: endpoint %lld: %s; retry in %ld ms", x->id, x->endpoint_id, x->error,
		 *delay);
	metrics_webhook("retry");
	return "pending";
}

/* Disable the endpoint of delivery x (410 Gone). */
static void webhook_gone(struct db *db, const struct webhook_send *x)
{
	char id[24];
	const char *params[1] = { id };

	snprintf(id, sizeof(id), "%lld", x->id);
	PQclear(db_exec(db, DB_WEBHOOK_GONE, 1, params));
}

/* Write what finished, in one statement. */
static void webhook_record(struct webhook_sender *ws, struct db *db)
{
	cJSON *arr = cJSON_CreateArray();
	struct webhook_send *x, *next;
	const char *params[1];
	char *json;
	PGresult *res;
	int gone = 0;

	for (x = ws->finished; x != NULL; x = x->next) {
		cJSON *o = cJSON_CreateObject();
		long delay;
		const char *state = webhook_state_of(ws, x, &delay);

		gone |= x->status == 410;
		cJSON_AddNumberToObject(o, "id", (double)x->id);
		cJSON_AddStringToObject(o, "state", state);
		if (x->status > 0)
			cJSON_AddNumberToObject(o, "status", (double)x->status);
		json_add_string_or_null(o, "last_error", x->error[0] ? x->error : NULL);
		cJSON_AddNumberToObject(o, "delay_ms", (double)delay);
		cJSON_AddItemToArray(arr, o);
	}
	json = json_print(arr);
	cJSON_Delete(arr);
	params[0] = json;
	res = json != NULL ? db_exec(db, DB_WEBHOOK_RESULT, 1, params) : NULL;
	if (res == NULL)
		log_error("webhook: cannot record deliveries; they are sent again when their claims expire");
	PQclear(res);
	free(json);
	for (x = ws->finished; x != NULL; x = next) {
		next = x->next;
		if (gone && x->status == 410)
			webhook_gone(db, x);
		webhook_send_free(x);
	}
	ws->finished = NULL;
}

/* Collect the transfers that ended. */
static void webhook_collect(struct webhook_sender *ws)
{
	CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(ws->multi, &left)) != NULL) {
		struct webhook_send *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (msg->data.result == CURLE_OK) {
			curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
			if (x->status < 200 || x->status >= 300)
				snprintf(x->error, sizeof(x->error), "HTTP %ld: %.150s", x->status,
					 x->response.text);
		} else {
			snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(msg->data.result));
		}
		curl_multi_remove_handle(ws->multi, x->easy);
		ws->in_flight--;
		x->next = ws->finished;
		ws->finished = x;
	}
}

/* How many transfers have finished and wait for their record. */
static int webhook_nfinished(const struct webhook_sender *ws)
{
	const struct webhook_send *x;
	int n = 0;

	for (x = ws->finished; x != NULL; x = x->next)
		n++;
	return n;
}

/*
 * Keep up to webhook.concurrency transfers in flight, topped up once a
 * quarter of them are free (so that a claim's round trip overlaps the other
 * sends).  Answers are recorded together: when nothing else is in flight,
 * when a quarter of the slots wait for theirs, or WEBHOOK_RECORD_WINDOW_MS
 * after the first.  A recorded delivery may make its resource's next event
 * due: claim again after each record until a claim comes back short (and
 * its announce step too: announced cancels that no endpoint takes any more
 * make no delivery, but must still be cleared) and nothing is in flight.
 */
int webhook_drain(struct webhook_sender *ws, struct db *db, int limit)
{
	int conc = ws->cfg->webhook_concurrency, processed = 0, announced = 0, exhausted = 0;
	long long first_done = 0;

	if (db_connect(db) < 0)
		return -1;
	for (;;) {
		int room = conc - ws->in_flight, running = 0, wait_ms = 100;

		if (room > limit - processed - announced) /* so that a drain ends: quit, log reopen */
			room = limit - processed - announced;
		if (!exhausted && room > 0 && (ws->in_flight == 0 || room >= (conc + 3) / 4)) {
			int n = webhook_claim(ws, db, room);

			if (n < 0 && ws->in_flight == 0 && ws->finished == NULL)
				return processed > 0 ? processed : -1;
			/* a full announce may have left more to write */
			exhausted = n < room && ws->announced < room;
			processed += n > 0 ? n : 0;
			announced += n >= 0 ? ws->announced : 0;
		}
		if (ws->in_flight == 0 && ws->finished == NULL && (exhausted || room <= 0))
			break;
		if (ws->in_flight > 0) {
			curl_multi_perform(ws->multi, &running);
			webhook_collect(ws);
		}
		if (ws->finished != NULL) {
			long long now = clock_monotonic_ms();

			if (first_done == 0)
				first_done = now;
			if (ws->in_flight == 0 || now - first_done >= WEBHOOK_RECORD_WINDOW_MS ||
			    webhook_nfinished(ws) >= (conc + 3) / 4) {
				webhook_record(ws, db);
				first_done = 0;
				exhausted = 0;
				continue;
			}
			wait_ms = (int)(first_done + WEBHOOK_RECORD_WINDOW_MS - now);
		}
		if (running > 0 && wait_ms > 0)
			curl_multi_poll(ws->multi, NULL, 0, wait_ms, NULL);
	}
	return processed + announced;
}
