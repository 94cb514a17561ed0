/*
 * suppressions.h - the do-not-call list (SPEC 12): POST and GET
 * /suppressions, GET and DELETE /suppressions/{number}.
 */
#ifndef CALLSTOP_SUPPRESSIONS_H
#define CALLSTOP_SUPPRESSIONS_H

#include "http/api.h"
#include "http/request.h"

void api_suppressions_add(struct request *r, struct worker_ctx *ctx, const char *unused);
void api_suppressions_list(struct request *r, struct worker_ctx *ctx, const char *unused);
void api_suppression_get(struct request *r, struct worker_ctx *ctx, const char *number);
void api_suppression_remove(struct request *r, struct worker_ctx *ctx, const char *number);

#endif
