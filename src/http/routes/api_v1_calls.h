/*
 * api_v1_calls.h - the Heppu-style calls API (SPEC 4.1), x-api-key alone.
 */
#ifndef CALLSTOP_API_V1_CALLS_H
#define CALLSTOP_API_V1_CALLS_H

#include "http/api.h"
#include "http/request.h"

/* DELETE /api/v1/calls/{callId} */
void api_heppu_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET /api/v1/calls/{callId} */
void api_heppu_get(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET /api/v1/calls?agentId=&status=&startDate=&endDate=&page=&limit= */
void api_heppu_list(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
