/*
 * api.h - what every route handler shares: the error
 * answer of each API family, and authentication.
 */
#ifndef CALLSTOP_API_H
#define CALLSTOP_API_H

#include "common/auth.h"
#include "core/ctx.h"
#include "http/request.h"

/* The API families of SPEC sections 3 and 4: each has its own error body. */
enum api_family {
	API_UNIFIED = 0,
	API_HEPPU,
	API_TRILLET,
	API_ADMIN,
};

/*
 * Answer an error in the body shape of family (SPEC 3 for unified):
 * code is the snake_case code (unified), message the human text.
 * 503 database_unavailable also sets Retry-After: 1; 405 needs the caller's
 * Allow header.
 */
void api_error(struct request *r, enum api_family family, int status, const char *code, const char *message);

/* The body api_error() answers, for an answer that adds members to it
 * (SPEC 10.2's 409 too_many_matches); the caller replies with it. */
cJSON *api_error_body(const struct request *r, enum api_family family, int status, const char *code,
		      const char *message);

/* Answer a failed database call in the family's body: 503 (with
 * Retry-After, SPEC 3) when PostgreSQL was unreachable, so nothing was
 * changed; 500 when the server refused a statement. */
void api_db_error(struct request *r, const struct worker_ctx *ctx, enum api_family family);

/*
 * Verify x-api-key (SPEC 2) for family: returns 0 with *id filled and
 * r->tenant_id set, or -1 after answering 401 or 503 in the family's body.
 */
int api_auth_key(struct request *r, struct worker_ctx *ctx, enum api_family family, struct auth_identity *id);

/* Verify X-Admin-Token (SPEC 4.3): 0 with *token_id, or -1 after answering. */
int api_auth_admin(struct request *r, struct worker_ctx *ctx, long long *token_id);

/*
 * Authenticate a unified-family request (SPEC 2): X-API-Key looked up,
 * X-Frontend-ID compared with the key's frontend id.  Returns 0 with *id
 * filled and r->tenant_id set, or -1 after answering 401, 403 or 503.
 */
int api_auth_unified(struct request *r, struct worker_ctx *ctx, struct auth_identity *id);

#endif
