/*
 * openai.h - OpenAI Realtime (SIP) hangup (SPEC 6; OpenAI API reference,
 * "Realtime calls: hang up").
 *
 * POST {base_url}/v1/realtime/calls/{call_id}/hangup, Authorization: Bearer
 * <key>, Idempotency-Key: the key chosen once for the outbox row.
 */
#ifndef CALLSTOP_OPENAI_H
#define CALLSTOP_OPENAI_H

#include "core/providers/provider.h"

/* The outbox's entry (provider.h): the hangup of the row's call id with the
 * row's Idempotency-Key; 2xx done, 404 done (already ended), other 4xx
 * permanent, else retry (SPEC 6). */
extern const struct provider openai_provider;

#endif
