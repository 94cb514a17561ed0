/*
 * batch_pause.h - POST /batch/{batch_id}/pause and /resume (SPEC 10.1).
 */
#ifndef CALLSTOP_BATCH_PAUSE_H
#define CALLSTOP_BATCH_PAUSE_H

#include "http/api.h"
#include "http/request.h"

void api_batch_pause(struct request *r, struct worker_ctx *ctx, const char *id);
void api_batch_resume(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
