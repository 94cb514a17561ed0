/*
 * internal.h - the internal-only pages, after php-fpm's fpm_status:
 * GET /callstop-status (process manager status, JSON), GET
 * /callstop-metrics (Prometheus text) and GET /callstop-ready (a load
 * balancer's health check).  nginx serves them on exact-match
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

/* GET /callstop-ready: 200 when this worker's database connection answers a
 * statement now and the schema is current (common/db_schema.h), else 503 with
 * Retry-After.  The body says which: {"ready", "database" ("up", "down"),
 * "schema_version" (null when unknown), "schema_needed"}. */
void api_internal_ready(struct request *r, struct worker_ctx *ctx, const char *id);

#endif
