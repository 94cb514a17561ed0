/*
 * batch.h - the older path form of a batch cancel (SPEC 3.3).
 */
#ifndef CALLSTOP_BATCH_H
#define CALLSTOP_BATCH_H

#include "http/api.h"
#include "http/request.h"

/* POST /batch/batch-cancel/{batch_id} (SPEC 3.3) */
void api_batch_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
