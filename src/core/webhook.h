/*
 * webhook.h - signed webhooks (SPEC 9): the Standard Webhooks 1.0 signature,
 * the endpoints' secrets, and the sender that the delivery child runs.
 *
 * Events and their deliveries are rows written by the SQL of the change
 * (callstop_event() in sql/011_webhooks.sql).  The sender claims due
 * deliveries (FOR UPDATE SKIP LOCKED: several hosts share the work; a
 * resource's later event is not claimed while an earlier one to the same
 * endpoint is pending), posts them through one libcurl multi handle, at most
 * webhook.concurrency at once, connections kept, and records each outcome:
 * 2xx delivered; 410 fails it and disables the endpoint; anything else is
 * retried with exponential backoff and jitter until webhook.max_age, then
 * failed.  A delivery's claim outlasts its request, so that a sender that
 * dies mid-send leaves it to be sent again (same webhook-id) once the claim
 * expires: nothing committed is lost.
 */
#ifndef CALLSTOP_WEBHOOK_H
#define CALLSTOP_WEBHOOK_H

#include <stddef.h>

#include "common/attr.h"
#include "common/conf.h"
#include "common/db.h"

/* "whsec_" + base64 of 32 random bytes (Standard Webhooks 1.0). */
#define WEBHOOK_SECRET_PREFIX "whsec_"
#define WEBHOOK_SECRET_BYTES 32
/* The secret as text, NUL included: prefix + 44 base64 characters. */
#define WEBHOOK_SECRET_MAX 64
/* "v1," + base64 of a SHA-256 HMAC (44), NUL included, with room to spare. */
#define WEBHOOK_SIGNATURE_MAX 64

/* A new secret into buf (at least WEBHOOK_SECRET_MAX bytes), from OpenSSL's
 * RAND_bytes.  Returns 0, or -1 if the generator failed. */
int webhook_secret_new(char *buf, size_t len) MUST_CHECK;

/*
 * The signature of one attempt, "v1,<base64 of HMAC-SHA256(key, id.ts.body)>",
 * into out (at least WEBHOOK_SIGNATURE_MAX bytes).  secret is "whsec_..."
 * (the prefix is optional, as in the reference libraries); key is its
 * base64-decoded remainder.  ts: Unix seconds.  Returns 0, or -1 if the
 * secret is not base64 or out is too small.
 */
int webhook_sign(const char *secret, const char *id, long long ts, const char *body, size_t body_len,
		 char *out, size_t outlen) MUST_CHECK;

struct webhook_sender;

/* A sender with cfg's [webhook] settings (borrowed: it must outlive the
 * sender).  NULL on ENOMEM. */
struct webhook_sender *webhook_sender_new(const struct conf *cfg) MUST_CHECK;
void webhook_sender_free(struct webhook_sender *ws);

/* Claim due deliveries as slots free up, send and record them, until none is
 * due, no announced cancel is left to write as an event (sql/014) and none
 * is in flight, or limit claimed and written between them.  Returns the
 * number of deliveries claimed plus announced cancels written, or -1 if the
 * database is unreachable. */
int webhook_drain(struct webhook_sender *ws, struct db *db, int limit) MUST_CHECK;

#endif
