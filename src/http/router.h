/*
 * router.h - the one routing table: method + path pattern -> handler.
 */
#ifndef CALLSTOP_ROUTER_H
#define CALLSTOP_ROUTER_H

#include <stddef.h>

#include "http/api.h"
#include "http/request.h"

/* A handler answers through request_reply()/api_error().  id is the decoded
 * {id} segment of the path, or NULL for patterns without one. */
typedef void (*router_handler)(struct request *r, struct worker_ctx *ctx, const char *id);

/* The family whose error body answers a path, by its prefix (SPEC 3, 4). */
enum api_family router_family(const char *path);

/* The distinct route names (static strings), and "-" (no route matched),
 * into names[0..max); returns how many.  The metrics count by these. */
size_t router_names(const char **names, size_t max);

/* Find the route and run it; answer 404 (no pattern matches) or 405 with an
 * Allow header (a pattern matches, not with this method). */
void router_dispatch(struct request *r, struct worker_ctx *ctx);

#endif
