/*
 * v1_batch_calls.h - the Trillet-style batch API (SPEC 4.2),
 * x-api-key + x-workspace-id.
 */
#ifndef CALLSTOP_V1_BATCH_CALLS_H
#define CALLSTOP_V1_BATCH_CALLS_H

#include "http/api.h"
#include "http/request.h"

/* DELETE /v1/api/batch-calls/{batchId} and /v1/batch-calls/{batchId}:
 * graceful cancel (queued entries cancelled, active calls finish). */
void api_trillet_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET on the same paths: the same shape, nothing changed. */
void api_trillet_get(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
