/*
 * api_unified.h - the unified routes of SPEC section 3.
 */
#ifndef CALLSTOP_API_UNIFIED_H
#define CALLSTOP_API_UNIFIED_H

#include "http/api.h"
#include "http/request.h"

/* POST /calls/cancel (SPEC 3.1) */
void api_calls_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET /calls/status/{resource_id} (SPEC 3.2) */
void api_calls_status(struct request *r, struct worker_ctx *ctx, const char *id);

/* POST /batch/batch-cancel/{batch_id} (SPEC 3.3) */
void api_batch_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
