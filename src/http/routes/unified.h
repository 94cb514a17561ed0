/*
 * unified.h - what the unified routes share: those of SPEC 3, calls.c
 * (POST /calls/cancel, GET /calls/status/{id}) and batch.c
 * (POST /batch/batch-cancel/{id}), and those of SPEC 10 and 12,
 * batch_pause.c, calls_cancel_matching.c and suppressions.c.
 */
#ifndef CALLSTOP_UNIFIED_H
#define CALLSTOP_UNIFIED_H

#include <cjson/cJSON.h>

#include "core/campaign.h"
#include "http/api.h"
#include "http/request.h"

/* Room for a SPEC 3.1 message. */
#define UNIFIED_MSG_MAX 256

/* The largest "limit" of a page (SPEC 3.2, 12). */
#define UNIFIED_LIMIT_MAX 1000

/* Answer 400 invalid_request with message. */
void unified_invalid(struct request *r, const char *message);

/*
 * The body checks every POST shares, in SPEC 3's order: size (413), media
 * type (415), JSON (400 invalid_json), an object without a repeated key
 * (400 invalid_request).  An empty body yields *root = NULL when
 * allow_empty.  Returns 0 with *root owned by the caller (cJSON_Delete), or
 * -1 after answering.
 */
int unified_body(struct request *r, struct worker_ctx *ctx, int allow_empty, cJSON **root);

/* A boolean member of root (NULL: no body) such as "force": absent = 0, a
 * boolean, anything else invalid.  Returns 0/1 or -1. */
int unified_bool_member(const cJSON *root, const char *name);

/* The "limit" query value of a keyed page (SPEC 3.2, 12): 1 to 1000, def
 * when absent.  Returns it, or -1 after answering 400 invalid_request. */
int unified_limit(struct request *r, int def);

/* Who asks a campaign operation (core/campaign.h): the request's route and
 * request id, the key's tenant and id; answer(arg) writes its answer. */
void unified_campaign_who(const struct request *r, const struct auth_identity *id, void (*answer)(void *),
			  void *arg, struct campaign_who *cw);

#endif
