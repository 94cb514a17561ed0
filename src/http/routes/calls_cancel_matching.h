/*
 * calls_cancel_matching.h - POST /calls/cancel-matching (SPEC 10.2).
 */
#ifndef CALLSTOP_CALLS_CANCEL_MATCHING_H
#define CALLSTOP_CALLS_CANCEL_MATCHING_H

#include "http/api.h"
#include "http/request.h"

void api_calls_cancel_matching(struct request *r, struct worker_ctx *ctx, const char *unused);

#endif
