/*
 * outbox.c - see outbox.h.
 */
#include "config.h"

#include "core/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/rand.h>

#include "common/clock.h"
#include "common/json.h"
#include "core/providers/livekit.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/providers/openai.h"

#define OUTBOX_RESPONSE_MAX 1024

struct outbox {
	const struct conf *cfg;
	CURLM *multi;    /* kept for the process: its connection cache */
};

/* One claimed row on its way out. */
struct outbox_xfer {
	long long id;
	char provider[16];
	char target[256];
	char idempotency_key[300];
	int attempts;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char response[OUTBOX_RESPONSE_MAX];
	size_t response_len;
	enum outbox_verdict verdict;
	char error[256];
};

struct outbox *outbox_new(const struct conf *cfg)
{
	struct outbox *ob = calloc(1, sizeof(*ob));

	if (ob == NULL)
		return NULL;
	ob->cfg = cfg;
	ob->multi = curl_multi_init();
	if (ob->multi == NULL) {
		free(ob);
		return NULL;
	}
	curl_multi_setopt(ob->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)cfg->outbox_concurrency);
	curl_multi_setopt(ob->multi, CURLMOPT_MAXCONNECTS, (long)cfg->outbox_concurrency);
	return ob;
}

void outbox_free(struct outbox *ob)
{
	if (ob == NULL)
		return;
	curl_multi_cleanup(ob->multi);
	free(ob);
}

enum outbox_verdict outbox_verdict_by_status(long http_status)
{
	if (http_status >= 200 && http_status < 300)
		return OUTBOX_DONE;
	if (http_status == 408 || http_status == 429 || http_status >= 500 || http_status == 0)
		return OUTBOX_RETRY;
	return OUTBOX_PERMANENT;
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
	int rc;

	x->easy = curl_easy_init();
	if (x->easy == NULL) {
		snprintf(x->error, sizeof(x->error), "out of memory");
		return -1;
	}
	/* a reload may have removed the provider since the row was queued */
	if (strcmp(x->provider, "livekit") == 0 && !conf_livekit_enabled(cfg)) {
		snprintf(x->error, sizeof(x->error), "LiveKit not configured");
		return -1;
	}
	if (strcmp(x->provider, "openai") == 0 && !conf_openai_enabled(cfg)) {
		snprintf(x->error, sizeof(x->error), "OpenAI not configured");
		return -1;
	}
	if (strcmp(x->provider, "livekit") == 0)
		rc = livekit_prepare(x->easy, cfg, x->target, &x->headers, &x->body);
	else
		rc = openai_prepare(x->easy, cfg, x->target, x->idempotency_key, &x->headers, &x->body);
	if (rc < 0) {
		snprintf(x->error, sizeof(x->error), "cannot build the %s request", x->provider);
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

static void outbox_finish(struct outbox_xfer *x, CURLcode code)
{
	long status = 0;

	if (code != CURLE_OK) {
		x->verdict = OUTBOX_RETRY;
		snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(code));
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	x->verdict = strcmp(x->provider, "livekit") == 0 ? livekit_verdict(status, x->response)
							 : openai_verdict(status, x->response);
	if (x->verdict != OUTBOX_DONE || status >= 300)
		snprintf(x->error, sizeof(x->error), "HTTP %ld: %.200s", status, x->response);
}

/* Send every transfer, at most outbox_concurrency at once. */
static void outbox_run(struct outbox *ob, struct outbox_xfer *xs, size_t n)
{
	size_t next = 0, in_flight = 0;

	while (next < n || in_flight > 0) {
		CURLMsg *msg;
		int running = 0, left = 0;

		while (next < n && in_flight < (size_t)ob->cfg->outbox_concurrency) {
			struct outbox_xfer *x = &xs[next++];

			if (outbox_prepare(ob, x) < 0) {
				x->verdict = OUTBOX_PERMANENT;
				continue;
			}
			curl_multi_add_handle(ob->multi, x->easy);
			in_flight++;
		}
		curl_multi_perform(ob->multi, &running);
		while ((msg = curl_multi_info_read(ob->multi, &left)) != NULL) {
			struct outbox_xfer *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			outbox_finish(x, msg->data.result);
			curl_multi_remove_handle(ob->multi, x->easy);
			in_flight--;
		}
		if (in_flight > 0)
			curl_multi_poll(ob->multi, NULL, 0, 100, NULL);
	}
}

/* Write every outcome back in one statement. */
static void outbox_record(struct outbox *ob, struct db *db, struct outbox_xfer *xs, size_t n,
			  enum outbox_result *results)
{
	cJSON *arr = cJSON_CreateArray();
	const char *params[1];
	char *json;
	PGresult *res;
	size_t i;

	for (i = 0; i < n; i++) {
		struct outbox_xfer *x = &xs[i];
		cJSON *o = cJSON_CreateObject();
		const char *state = "done";
		long delay = 0;

		if (x->verdict == OUTBOX_PERMANENT || (x->verdict == OUTBOX_RETRY &&
						       x->attempts >= ob->cfg->outbox_max_attempts)) {
			state = "failed";
			log_warn("outbox %lld: %s %s: %s; dead-lettered after %d attempt(s)", x->id, x->provider,
				 x->target, x->error, x->attempts);
		} else if (x->verdict == OUTBOX_RETRY) {
			state = "pending";
			delay = outbox_backoff_ms(ob->cfg, x->attempts);
			log_warn("outbox %lld: %s %s: %s; retry %d/%d in %ld ms", x->id, x->provider, x->target,
				 x->error, x->attempts + 1, ob->cfg->outbox_max_attempts, delay);
		}
		metrics_outbox(x->provider, state);
		if (results != NULL)
			results[i] = state[0] == 'd' ? OUTBOX_RESULT_DONE
				     : state[0] == 'f' ? OUTBOX_RESULT_FAILED : OUTBOX_RESULT_QUEUED;
		cJSON_AddNumberToObject(o, "id", (double)x->id);
		cJSON_AddStringToObject(o, "state", state);
		json_add_string_or_null(o, "last_error", x->error[0] ? x->error : NULL);
		cJSON_AddNumberToObject(o, "delay_ms", (double)delay);
		cJSON_AddItemToArray(arr, o);
	}
	json = json_print(arr);
	cJSON_Delete(arr);
	params[0] = json;
	res = json ? db_exec(db, DB_OUTBOX_RECORD, 1, params) : NULL;
	if (res == NULL)
		log_error("outbox: cannot record %zu result(s); the rows will be retried when their claim expires", n);
	PQclear(res);
	free(json);
}

static void outbox_xfers_free(struct outbox_xfer *xs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (xs[i].easy != NULL)
			curl_easy_cleanup(xs[i].easy);
		curl_slist_free_all(xs[i].headers);
		free(xs[i].body);
	}
	free(xs);
}

/* Turn claimed rows (id, provider, target, idempotency_key, attempts) into
 * transfers, send them, record them.  results[i] for row i. */
static void outbox_process(struct outbox *ob, struct db *db, PGresult *claimed, enum outbox_result *results)
{
	size_t i, n = (size_t)PQntuples(claimed);
	struct outbox_xfer *xs = calloc(n ? n : 1, sizeof(*xs));

	if (xs == NULL)
		return;
	for (i = 0; i < n; i++) {
		xs[i].id = strtoll(PQgetvalue(claimed, (int)i, 0), NULL, 10);
		snprintf(xs[i].provider, sizeof(xs[i].provider), "%s", PQgetvalue(claimed, (int)i, 1));
		snprintf(xs[i].target, sizeof(xs[i].target), "%s", PQgetvalue(claimed, (int)i, 2));
		snprintf(xs[i].idempotency_key, sizeof(xs[i].idempotency_key), "%s", PQgetvalue(claimed, (int)i, 3));
		xs[i].attempts = atoi(PQgetvalue(claimed, (int)i, 4));
	}
	outbox_run(ob, xs, n);
	outbox_record(ob, db, xs, n, results);
	outbox_xfers_free(xs, n);
}

/* A claim of rows rows lasts past the time their requests can take (they
 * go out outbox_concurrency at a time, each within outbox_timeout_ms), plus
 * a margin: no one else takes a row that is still on its way out. */
static void outbox_lease(const struct outbox *ob, size_t rows, char *buf, size_t len)
{
	size_t conc = (size_t)ob->cfg->outbox_concurrency;
	long long rounds = (long long)((rows + conc - 1) / conc);

	snprintf(buf, len, "%lld", (rounds ? rounds : 1) * ob->cfg->outbox_timeout_ms / 1000 + 10);
}

/* Claim and send ids[0..n) (one round: n <= outbox_concurrency). */
static void outbox_send_round(struct outbox *ob, struct db *db, const long long *ids, size_t n,
			      enum outbox_result *results)
{
	cJSON *arr;
	char *json, lease[24];
	const char *params[2];
	PGresult *claimed;
	enum outbox_result *by_row;
	size_t i, j;

	arr = cJSON_CreateArray();
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)ids[i]));
	json = json_print(arr);
	cJSON_Delete(arr);
	outbox_lease(ob, n, lease, sizeof(lease));
	params[0] = json;
	params[1] = lease;
	claimed = json ? db_exec(db, DB_OUTBOX_CLAIM_IDS, 2, params) : NULL;
	free(json);
	if (claimed == NULL)
		return;
	by_row = calloc((size_t)PQntuples(claimed) + 1, sizeof(*by_row));
	if (by_row != NULL) {
		outbox_process(ob, db, claimed, by_row);
		for (j = 0; j < (size_t)PQntuples(claimed); j++) {
			long long id = strtoll(PQgetvalue(claimed, (int)j, 0), NULL, 10);
			for (i = 0; i < n; i++)
				if (ids[i] == id)
					results[i] = by_row[j];
		}
		free(by_row);
	}
	PQclear(claimed);
}

/*
 * The worker answers its client only after this: rounds of
 * outbox_concurrency rows, each claimed just before it goes out (so that its
 * claim outlasts its requests), and no new round once outbox_timeout_ms has
 * passed.  What was not claimed by then stays for the retry child (it is due
 * once the grace period of a new row is over): a provider that hangs delays
 * the answer by at most twice outbox_timeout_ms, however many rows.
 */
void outbox_send(struct outbox *ob, struct db *db, const long long *ids, size_t n, enum outbox_result *results)
{
	long long deadline;
	size_t i, round;

	for (i = 0; i < n; i++)
		results[i] = OUTBOX_RESULT_QUEUED;
	if (ob == NULL || n == 0)
		return;
	deadline = clock_monotonic_ms() + ob->cfg->outbox_timeout_ms;
	for (i = 0; i < n && (i == 0 || clock_monotonic_ms() < deadline); i += round) {
		round = n - i < (size_t)ob->cfg->outbox_concurrency ? n - i : (size_t)ob->cfg->outbox_concurrency;
		outbox_send_round(ob, db, ids + i, round, results + i);
	}
}

int outbox_drain(struct outbox *ob, struct db *db, int limit)
{
	char limit_s[16], lease[24];
	const char *params[2] = { limit_s, lease };
	PGresult *claimed;
	int n;

	snprintf(limit_s, sizeof(limit_s), "%d", limit);
	outbox_lease(ob, limit > 0 ? (size_t)limit : 1, lease, sizeof(lease));
	claimed = db_exec(db, DB_OUTBOX_CLAIM_DUE, 2, params);
	if (claimed == NULL)
		return -1;
	n = PQntuples(claimed);
	if (n > 0)
		outbox_process(ob, db, claimed, NULL);
	PQclear(claimed);
	return n;
}
