/*
 * api_v1_admin.h - the admin cancel (SPEC 4.3), X-Admin-Token, across tenants.
 */
#ifndef CALLSTOP_API_V1_ADMIN_H
#define CALLSTOP_API_V1_ADMIN_H

#include "http/api.h"
#include "http/request.h"

/* POST /api/v1/admin/cancel/{call_id}: call_id is an OpenAI call id or a
 * call UUID. */
void api_admin_cancel(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
