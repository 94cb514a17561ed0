/*
 * transfer.h - one termination request of the outbox (SPEC 6): a claimed
 * termination_outbox row on its way out through libcurl.
 *
 * The outbox fills in the row's fields and its provider, transfer_prepare()
 * builds the request with the provider's prepare(), the outbox runs it on
 * its multi handle, and transfer_finish() reads the answer with the
 * provider's verdict().
 */
#ifndef CALLSTOP_TRANSFER_H
#define CALLSTOP_TRANSFER_H

#include <stddef.h>

#include <curl/curl.h>

#include "common/conf.h"
#include "core/providers/provider.h"

/* Bytes of an answer kept for the verdict and last_error. */
#define TRANSFER_RESPONSE_MAX 1024

/* The start of an answer: its first TRANSFER_RESPONSE_MAX - 1 bytes, NUL
 * terminated (zeroed: empty). */
struct transfer_answer {
	char text[TRANSFER_RESPONSE_MAX];
	size_t len;
};

/* A CURLOPT_WRITEFUNCTION that keeps the start of the answer in the struct
 * transfer_answer its userdata points to, and reads the rest. */
size_t transfer_keep_start(char *ptr, size_t size, size_t nmemb, void *answer);

/*
 * The options every request callstop sends shares: owner as its
 * CURLOPT_PRIVATE, write(data) for its answer, the connect and total
 * timeouts (ms), no signals, http and https only, callstop's User-Agent.
 * The outbox, the verifier (core/verify.h) and the webhook sender
 * (core/webhook.h) use it.
 */
void transfer_options(CURL *easy, void *owner, curl_write_callback write, void *data, long connect_ms,
		      long timeout_ms);

struct transfer {
	struct transfer *next; /* the owner's list */
	const struct provider *p;
	size_t slot;      /* the owner's: which of its slots */
	long long id;     /* termination_outbox.id */
	long long age_s;  /* since the row was queued, s */
	int attempts;     /* this one included */
	char target[256]; /* room name, call id */
	char idempotency_key[300];
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	struct transfer_answer response;
	enum provider_verdict verdict;
	char error[256]; /* for last_error: "" if none */
};

/* Build x's request for cfg (a calloc'ed x with the row's fields and p set).
 * Returns 0, or -1 with x->error saying why (the provider is no longer
 * configured, ENOMEM). */
int transfer_prepare(struct transfer *x, const struct conf *cfg);

/* Read how x ended (code: curl's result of the transfer) into x->verdict and
 * x->error. */
void transfer_finish(struct transfer *x, CURLcode code);

/* Delay before attempt number attempts + 1 of a request that failed, ms:
 * base_ms * 2^(attempts-1), capped at max_ms, with jitter in [50%, 100%] so
 * that requests failed together do not retry together.  The outbox's and
 * the webhook sender's retries. */
long transfer_backoff_ms(int base_ms, int max_ms, int attempts);

/* Free x and what it holds; x must not be on a multi handle. */
void transfer_free(struct transfer *x);

#endif
