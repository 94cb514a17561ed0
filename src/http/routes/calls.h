/*
 * calls.h - the unified routes under /calls (SPEC 3.1, 3.2).
 */
#ifndef CALLSTOP_CALLS_H
#define CALLSTOP_CALLS_H

#include "http/api.h"
#include "http/request.h"

/* POST /calls/cancel (SPEC 3.1) */
void api_calls_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET /calls/status/{resource_id} (SPEC 3.2) */
void api_calls_status(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
