/*
 * provider.h - what the termination outbox needs of a provider (SPEC 6).
 *
 * The outbox drives every provider through one table of these entries and
 * never names a provider: each provider module (livekit.c, openai.c) exports
 * its entry, and registry.c lists them.  A provider knows how to build its
 * request and how to read the answer; the outbox claims rows, sends, records
 * and retries.
 */
#ifndef CALLSTOP_PROVIDER_H
#define CALLSTOP_PROVIDER_H

#include <stddef.h>

#include <curl/curl.h>

#include "common/conf.h"

/* How one HTTP attempt ended. */
enum provider_verdict {
	PROVIDER_DONE,      /* terminated, or already gone */
	PROVIDER_RETRY,     /* 5xx, 408, 429, timeout, connection error */
	PROVIDER_PERMANENT, /* other 4xx: dead-lettered at once */
};

struct provider {
	const char *name;  /* as in termination_outbox.provider ("livekit") */
	const char *label; /* in messages and last_error ("LiveKit") */

	/* Non-zero if cfg configures this provider (a reload may remove it
	 * while rows for it are queued). */
	int (*enabled)(const struct conf *cfg);

	/*
	 * Set up easy for the termination of target (a room name, a call id):
	 * URL, headers, body.  idempotency_key is the row's own, the same on
	 * every retry.  *headers and *body receive what the caller frees
	 * (curl_slist_free_all, free) after the transfer, also on failure.
	 * Returns 0 or -1.
	 */
	int (*prepare)(CURL *easy, const struct conf *cfg, const char *target, const char *idempotency_key,
		       struct curl_slist **headers, char **body);

	/* Classify a finished transfer from its HTTP status and the start of
	 * its body (NUL-terminated, possibly cut). */
	enum provider_verdict (*verdict)(long http_status, const char *response);

	/* Non-zero if the provider offers a read-back (SPEC 11): an accepted
	 * request makes the row sent, and core/verify.c confirms it; zero: an
	 * accepted request is done (verified_at = now). */
	int verifies;
};

/* Verdict from an HTTP status alone: 2xx done; 408, 429, 5xx retry; other
 * 4xx permanent; 0 (no response) retry. */
enum provider_verdict provider_verdict_by_status(long http_status);

#endif
