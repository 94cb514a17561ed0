/*
 * internal.h - the internal-only pages, after php-fpm's fpm_status:
 * GET /callstop-status (process manager status, JSON) and GET
 * /callstop-metrics (Prometheus text).  nginx serves them on exact-match
 * locations allowed from 127.0.0.1 only and marks them with the FastCGI
 * param CALLSTOP_INTERNAL=1; a request without it is answered 404, as if
 * the routes did not exist.  No API key.
 */
#ifndef CALLSTOP_API_INTERNAL_H
#define CALLSTOP_API_INTERNAL_H

#include "http/api.h"
#include "http/request.h"

/* 1 if nginx marked the request internal (CALLSTOP_INTERNAL=1). */
int api_internal_allowed(const struct request *r);

/* GET /callstop-status */
void api_internal_status(struct request *r, struct worker_ctx *ctx, const char *id);

/* GET /callstop-metrics */
void api_internal_metrics(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
