/*
 * openai.h - OpenAI Realtime (SIP) hangup (SPEC 6; OpenAI API reference,
 * "Realtime calls: hang up").
 *
 * POST {base_url}/v1/realtime/calls/{call_id}/hangup, Authorization: Bearer
 * <key>, Idempotency-Key: the key chosen once for the outbox row.
 */
#ifndef CALLSTOP_OPENAI_H
#define CALLSTOP_OPENAI_H

#include <curl/curl.h>

#include "core/outbox.h"

/* Set up easy for the hangup of call_id; *headers as in livekit_prepare(). */
int openai_prepare(CURL *easy, const struct conf *c, const char *call_id, const char *idempotency_key,
		   struct curl_slist **headers, char **body);

/* 2xx done, 404 done (already ended), other 4xx permanent, else retry. */
enum outbox_verdict openai_verdict(long http_status, const char *response);

#endif
