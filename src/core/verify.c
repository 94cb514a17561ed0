/*
 * verify.c - see verify.h.
 */
#include "config.h"

#include "core/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "core/providers/livekit.h"
#include "core/transfer.h"

/* Pauses between a DeleteRoom of the escalation and the next read-back, ms;
 * the last one repeats. */
static const int verify_backoff_ms[] = { 100, 250, 500, 1000 };
#define VERIFY_NBACKOFF ((int)(sizeof(verify_backoff_ms) / sizeof(verify_backoff_ms[0])))

/* Most bytes of a ListParticipants answer read (a participant is ~1 KiB). */
#define VERIFY_RESPONSE_MAX (1024 * 1024)

enum verify_call { VERIFY_LIST, VERIFY_REMOVE, VERIFY_DELETE };

static const char *const verify_method[] = { "ListParticipants", "RemoveParticipant", "DeleteRoom" };

/* One room under verification. */
struct verify_job {
	int used;
	long long id; /* termination_outbox.id */
	char call_id[40];
	char room[256];
	long long deadline; /* monotonic ms: verify_deadline after sent */
	int deadline_s;     /* verify_deadline, for the messages */
	long long wake;     /* monotonic ms: the next request not before */
	enum verify_call call;
	int rounds;    /* escalations so far */
	char **idents; /* participants to remove, SIP first */
	size_t nidents, next;
	CURL *easy; /* kept between the job's requests */
	struct curl_slist *headers;
	char *body, *resp;
	size_t resp_len;
	int in_flight;
	char seen[512];     /* who was there at the last read-back */
	char error[256];    /* the last request that failed */
	const char *final;  /* "done" | "unknown", NULL while under way */
	long long final_at; /* monotonic ms when seen gone */
};

struct verify {
	const struct conf *cfg;
	CURLM *multi;
	struct verify_job *jobs;
	int njobs, used;
	int kicked;
	long long next_claim; /* monotonic ms */
};

struct verify *verify_new(const struct conf *cfg)
{
	struct verify *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->cfg = cfg;
	v->njobs = cfg->outbox_concurrency;
	v->jobs = calloc((size_t)v->njobs, sizeof(*v->jobs));
	v->multi = curl_multi_init();
	v->kicked = 1;
	if (v->jobs == NULL || v->multi == NULL) {
		verify_free(v);
		return NULL;
	}
	curl_multi_setopt(v->multi, CURLMOPT_MAXCONNECTS, (long)v->njobs);
	return v;
}

static void verify_idents_free(struct verify_job *j)
{
	size_t i;

	for (i = 0; i < j->nidents; i++)
		free(j->idents[i]);
	free(j->idents);
	j->idents = NULL;
	j->nidents = j->next = 0;
}

/* End j's transfer, if any, and what it held. */
static void verify_request_end(struct verify *v, struct verify_job *j)
{
	if (j->in_flight)
		curl_multi_remove_handle(v->multi, j->easy);
	j->in_flight = 0;
	curl_slist_free_all(j->headers);
	j->headers = NULL;
	free(j->body);
	free(j->resp);
	j->body = j->resp = NULL;
	j->resp_len = 0;
}

static void verify_job_clear(struct verify *v, struct verify_job *j)
{
	verify_request_end(v, j);
	verify_idents_free(j);
	if (j->easy != NULL)
		curl_easy_cleanup(j->easy);
	memset(j, 0, sizeof(*j));
	v->used--;
}

void verify_free(struct verify *v)
{
	int i;

	if (v == NULL)
		return;
	for (i = 0; v->jobs != NULL && i < v->njobs; i++)
		if (v->jobs[i].used)
			verify_job_clear(v, &v->jobs[i]);
	if (v->multi != NULL)
		curl_multi_cleanup(v->multi);
	free(v->jobs);
	free(v);
}

void verify_kick(struct verify *v)
{
	v->kicked = 1;
}

static size_t verify_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct verify_job *j = userdata;
	size_t n = size * nmemb;
	char *r;

	if (j->resp_len + n > VERIFY_RESPONSE_MAX)
		return 0; /* the transfer fails: retried as an error */
	r = realloc(j->resp, j->resp_len + n + 1);
	if (r == NULL)
		return 0;
	memcpy(r + j->resp_len, ptr, n);
	j->resp = r;
	j->resp_len += n;
	j->resp[j->resp_len] = '\0';
	return n;
}

/* Start j's next request (j->call); on failure j waits out a pause. */
static void verify_request(struct verify *v, struct verify_job *j)
{
	const struct conf *cfg = v->cfg;
	const char *identity = j->call == VERIFY_REMOVE ? j->idents[j->next] : NULL;

	if (j->easy == NULL)
		j->easy = curl_easy_init();
	else
		curl_easy_reset(j->easy);
	if (j->easy == NULL ||
	    livekit_rpc(j->easy, cfg, verify_method[j->call], j->room, identity, &j->headers, &j->body) < 0) {
		snprintf(j->error, sizeof(j->error), "cannot build the %s request", verify_method[j->call]);
		verify_request_end(v, j);
		j->wake = clock_monotonic_ms() + verify_backoff_ms[VERIFY_NBACKOFF - 1];
		return;
	}
	transfer_options(j->easy, j, verify_on_data, j, (long)cfg->outbox_connect_timeout_ms,
			 (long)cfg->outbox_timeout_ms);
	if (curl_multi_add_handle(v->multi, j->easy) != CURLM_OK) {
		verify_request_end(v, j);
		j->wake = clock_monotonic_ms() + verify_backoff_ms[VERIFY_NBACKOFF - 1];
		return;
	}
	j->in_flight = 1;
}

/* 1 if participant p of a ListParticipants answer is a SIP leg (protojson
 * writes the enum ParticipantInfo.Kind by name, "SIP"; its number is 3). */
static int verify_is_sip(const cJSON *p)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(p, "kind");

	if (cJSON_IsString(kind))
		return strcmp(kind->valuestring, "SIP") == 0;
	return cJSON_IsNumber(kind) && kind->valueint == 3;
}

/* The participants of a ListParticipants answer into j->idents (SIP
 * first) and j->seen.  Returns how many, or -1 if it does not read. */
static int verify_participants(struct verify_job *j, const char *response)
{
	cJSON *doc = cJSON_Parse(response != NULL ? response : ""), *p;
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "participants");
	int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0, pass;
	size_t len = 0;

	if (doc == NULL || (list != NULL && !cJSON_IsArray(list))) {
		cJSON_Delete(doc);
		return -1;
	}
	verify_idents_free(j);
	j->seen[0] = '\0';
	j->idents = n > 0 ? calloc((size_t)n, sizeof(*j->idents)) : NULL;
	for (pass = 0; pass < 2 && j->idents != NULL; pass++) {
		cJSON_ArrayForEach(p, list) {
			const char *id =
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "identity"));
			const cJSON *kind = cJSON_GetObjectItemCaseSensitive(p, "kind");
			char k[16];

			if (id == NULL || verify_is_sip(p) != (pass == 0))
				continue;
			j->idents[j->nidents] = strdup(id);
			if (j->idents[j->nidents] != NULL)
				j->nidents++;
			snprintf(k, sizeof(k), "%s",
				 cJSON_IsString(kind) ? kind->valuestring
				 : pass == 0          ? "SIP"
						      : "STANDARD");
			if (len < sizeof(j->seen))
				len += (size_t)snprintf(j->seen + len, sizeof(j->seen) - len, "%s%s (%s)",
							len ? ", " : "", id, k);
		}
	}
	cJSON_Delete(doc);
	return n;
}

/* j is finished: done (gone) or unknown (why in j->error). */
static void verify_finish(struct verify_job *j, const char *state)
{
	j->final = state;
	j->final_at = clock_monotonic_ms();
	if (strcmp(state, "unknown") == 0) {
		char room[300], seen[600];

		log_warn(
			"verify: call %s: LiveKit room %s unknown after %d escalation(s): %s; still there: %s",
			j->call_id, log_escape(room, sizeof(room), j->room), j->rounds, j->error,
			j->seen[0] ? log_escape(seen, sizeof(seen), j->seen) : "(not read)");
	}
}

/* j's next request after pause number i (0-based; the last one repeats),
 * but not after the deadline: the last read-back is at the deadline, not up
 * to a pause later. */
static void verify_pause(struct verify_job *j, long long now, int i)
{
	j->wake = now + verify_backoff_ms[i < VERIFY_NBACKOFF ? i : VERIFY_NBACKOFF - 1];
	if (j->wake > j->deadline)
		j->wake = j->deadline > now ? j->deadline : now;
}

/* A read-back that found participants, or could not be read: escalate, try
 * again after a pause, or give up at the deadline. */
static void verify_not_gone(struct verify_job *j, int present, long long now)
{
	if (now >= j->deadline && (j->rounds > 0 || !present)) {
		if (present)
			snprintf(j->error, sizeof(j->error), "still present after %d escalation(s) and %d s",
				 j->rounds, j->deadline_s);
		verify_finish(j, "unknown");
		return;
	}
	if (!present) { /* the read-back failed: read again after a pause */
		verify_pause(j, now, j->rounds);
		j->call = VERIFY_LIST;
		return;
	}
	j->rounds++;
	metrics_escalation("livekit");
	j->next = 0;
	j->call = j->nidents > 0 ? VERIFY_REMOVE : VERIFY_DELETE;
	j->wake = now;
}

/* The answer to a ListParticipants. */
static void verify_on_list(struct verify_job *j, long status, const char *response, long long now)
{
	int n;

	if (livekit_not_found(status, response)) {
		verify_finish(j, "done");
		return;
	}
	if (status == 200 && (n = verify_participants(j, response)) >= 0) {
		if (n == 0)
			verify_finish(j, "done");
		else
			verify_not_gone(j, 1, now);
		return;
	}
	snprintf(j->error, sizeof(j->error), "ListParticipants: HTTP %ld: %.180s", status,
		 response != NULL ? response : "");
	if (status >= 400 && status < 500 && status != 408 && status != 429) {
		/* refused (credentials, grants): reading again will not help */
		verify_finish(j, "unknown");
		return;
	}
	verify_not_gone(j, 0, now);
}

/* A transfer of j ended (code: curl's result). */
static void verify_on_answer(struct verify *v, struct verify_job *j, CURLcode code)
{
	long long now = clock_monotonic_ms();
	long status = 0;

	if (code == CURLE_OK)
		curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(j->error, sizeof(j->error), "%s: %s", verify_method[j->call],
			 curl_easy_strerror(code));
	switch (j->call) {
	case VERIFY_LIST:
		if (code == CURLE_OK)
			verify_on_list(j, status, j->resp, now);
		else
			verify_not_gone(j, 0, now);
		break;
	case VERIFY_REMOVE:
		/* not_found (already left) or an error: on to the next one; the
		 * read-back judges */
		if (++j->next >= j->nidents)
			j->call = VERIFY_DELETE;
		break;
	case VERIFY_DELETE:
		j->call = VERIFY_LIST;
		verify_pause(j, now, j->rounds - 1);
		break;
	}
	verify_request_end(v, j);
}

/* Take the transfers that ended. */
static void verify_collect(struct verify *v)
{
	CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(v->multi, &left)) != NULL) {
		struct verify_job *j = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		verify_on_answer(v, j, msg->data.result);
	}
}

/* Start every request that is due. */
static void verify_start_due(struct verify *v)
{
	long long now = clock_monotonic_ms();
	int i;

	for (i = 0; i < v->njobs; i++) {
		struct verify_job *j = &v->jobs[i];

		if (j->used && j->final == NULL && !j->in_flight && j->wake <= now)
			verify_request(v, j);
	}
}

/* Claim due sent rows into the free slots. */
static int verify_claim(struct verify *v, struct db *db)
{
	const struct conf *cfg = v->cfg;
	char limit[16], lease[16];
	const char *params[2] = { limit, lease };
	long long now = clock_monotonic_ms();
	int i, k = 0, want = v->njobs - v->used;
	PGresult *res;

	if (want <= 0 || (!v->kicked && now < v->next_claim))
		return 0;
	snprintf(limit, sizeof(limit), "%d", want);
	/* the whole verification: the deadline, then one more round */
	snprintf(lease, sizeof(lease), "%d",
		 cfg->outbox_verify_deadline + 4 * (cfg->outbox_timeout_ms + 999) / 1000 + 10);
	if ((res = db_exec(db, DB_VERIFY_CLAIM, 2, params)) == NULL)
		return -1;
	v->kicked = PQntuples(res) == want; /* more may be due */
	v->next_claim = now + cfg->outbox_poll_ms;
	for (i = 0; i < PQntuples(res); i++) {
		struct verify_job *j;

		while (v->jobs[k].used)
			k++;
		j = &v->jobs[k];
		j->used = 1;
		v->used++;
		j->id = strtoll(PQgetvalue(res, i, VERIFY_CLAIM_ID), NULL, 10);
		snprintf(j->call_id, sizeof(j->call_id), "%s", PQgetvalue(res, i, VERIFY_CLAIM_CALL_ID));
		snprintf(j->room, sizeof(j->room), "%s", PQgetvalue(res, i, VERIFY_CLAIM_TARGET));
		j->deadline = now + cfg->outbox_verify_deadline * 1000LL -
			      strtoll(PQgetvalue(res, i, VERIFY_CLAIM_SENT_AGO_MS), NULL, 10);
		j->deadline_s = cfg->outbox_verify_deadline;
		j->wake = now;
		j->call = VERIFY_LIST;
		if (strcmp(PQgetvalue(res, i, VERIFY_CLAIM_PROVIDER), "livekit") != 0 ||
		    !conf_livekit_enabled(cfg)) {
			snprintf(j->error, sizeof(j->error), "LiveKit not configured; cannot verify");
			verify_finish(j, "unknown");
		}
	}
	PQclear(res);
	return 0;
}

/* Write the rows that ended (or, release: every row, as sent again) in one
 * statement, and free their slots. */
static int verify_record(struct verify *v, struct db *db, int release)
{
	cJSON *arr = cJSON_CreateArray();
	long long now = clock_monotonic_ms();
	const char *params[1];
	PGresult *res = NULL;
	char *json;
	int i, n = 0;

	for (i = 0; i < v->njobs; i++) {
		struct verify_job *j = &v->jobs[i];
		cJSON *o;

		if (!j->used || (j->final == NULL && !release))
			continue;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "id", (double)j->id);
		cJSON_AddStringToObject(o, "state", j->final != NULL ? j->final : "sent");
		json_add_string_or_null(o, "last_error",
					j->final != NULL && strcmp(j->final, "unknown") == 0 ? j->error
											     : NULL);
		cJSON_AddNumberToObject(o, "ago_ms", (double)(j->final_at ? now - j->final_at : 0));
		cJSON_AddItemToArray(arr, o);
		verify_job_clear(v, j);
		n++;
	}
	json = n > 0 ? json_print(arr) : NULL;
	cJSON_Delete(arr);
	if (n == 0)
		return 0;
	params[0] = json;
	if (json != NULL)
		res = db_exec(db, DB_VERIFY_RESULT, 1, params);
	if (res == NULL)
		log_error("verify: cannot record %d result(s); verified again when their claim expires", n);
	metrics_silence_of(res);
	PQclear(res);
	free(json);
	return res != NULL ? 0 : -1;
}

int verify_step(struct verify *v, struct db *db)
{
	int running = 0, finished = 0, i;

	if (verify_claim(v, db) < 0)
		return -1;
	if (v->used == 0)
		return 0;
	verify_start_due(v);
	curl_multi_perform(v->multi, &running);
	verify_collect(v);
	/* the next request of a room that just answered goes out now */
	verify_start_due(v);
	curl_multi_perform(v->multi, &running);
	for (i = 0; i < v->njobs; i++)
		finished += v->jobs[i].used && v->jobs[i].final != NULL;
	if (finished > 0 && verify_record(v, db, 0) < 0)
		return -1;
	return v->used;
}

void verify_wait(struct verify *v, int timeout_ms)
{
	long long now = clock_monotonic_ms(), wake = now + timeout_ms;
	int i;

	for (i = 0; i < v->njobs; i++) {
		const struct verify_job *j = &v->jobs[i];

		if (j->used && !j->in_flight && j->final == NULL && j->wake < wake)
			wake = j->wake;
	}
	if (wake > now)
		curl_multi_poll(v->multi, NULL, 0, (int)(wake - now), NULL);
}

void verify_release(struct verify *v, struct db *db)
{
	if (v == NULL)
		return;
	if (v->used > 0 && verify_record(v, db, 1) < 0)
		log_warn("verify: rows under verification are left to their claim's expiry");
	verify_free(v);
}
