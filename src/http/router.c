/*
 * router.c - see router.h.
 */
#include "http/router.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "http/idempotency.h"
#include "http/routes/api_v1_admin.h"
#include "http/routes/api_v1_calls.h"
#include "http/routes/batch.h"
#include "http/routes/batch_pause.h"
#include "http/routes/calls.h"
#include "http/routes/calls_cancel_matching.h"
#include "http/routes/internal.h"
#include "http/routes/suppressions.h"
#include "http/routes/v1_batch_calls.h"
#include "common/fault.h"
#include "common/json.h"
#include "common/log.h"

#define ROUTER_ID_MAX 256
/* RFC 9110 5.6.2: the characters of a token, such as a method */
#define ROUTER_TCHAR "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* Only for requests nginx marked CALLSTOP_INTERNAL=1; to the others the
 * route does not exist (404, never 405). */
#define ROUTE_INTERNAL 0x1
/* Changes state: takes an Idempotency-Key (SPEC 8, http/idempotency.h). */
#define ROUTE_IDEMPOTENT 0x2

struct route {
	const char *method;
	const char *pattern; /* "{id}" matches one non-empty path segment */
	router_handler handler;
	const char *name; /* for the access log and metrics */
	unsigned flags;   /* ROUTE_* */
};

static const struct route router_routes[] = {
	{ "POST", "/calls/cancel", api_calls_cancel, "calls.cancel", ROUTE_IDEMPOTENT },
	{ "GET", "/calls/status/{id}", api_calls_status, "calls.status", 0 },
	{ "POST", "/batch/batch-cancel/{id}", api_batch_cancel, "batch.cancel", ROUTE_IDEMPOTENT },
	/* SPEC 10, 12: campaign control */
	{ "POST", "/batch/{id}/pause", api_batch_pause, "batch.pause", ROUTE_IDEMPOTENT },
	{ "POST", "/batch/{id}/resume", api_batch_resume, "batch.resume", ROUTE_IDEMPOTENT },
	{ "POST", "/calls/cancel-matching", api_calls_cancel_matching, "calls.cancel_matching",
	  ROUTE_IDEMPOTENT },
	{ "POST", "/suppressions", api_suppressions_add, "suppressions.add", ROUTE_IDEMPOTENT },
	{ "GET", "/suppressions", api_suppressions_list, "suppressions.list", 0 },
	{ "GET", "/suppressions/{id}", api_suppression_get, "suppressions.get", 0 },
	{ "DELETE", "/suppressions/{id}", api_suppression_remove, "suppressions.remove", ROUTE_IDEMPOTENT },
	/* SPEC 4.1, Heppu-style */
	{ "DELETE", "/api/v1/calls/{id}", api_heppu_cancel, "heppu.cancel", ROUTE_IDEMPOTENT },
	{ "GET", "/api/v1/calls/{id}", api_heppu_get, "heppu.get", 0 },
	{ "GET", "/api/v1/calls", api_heppu_list, "heppu.list", 0 },
	/* SPEC 4.2, Trillet-style */
	{ "DELETE", "/v1/api/batch-calls/{id}", api_trillet_cancel, "trillet.cancel", ROUTE_IDEMPOTENT },
	{ "GET", "/v1/api/batch-calls/{id}", api_trillet_get, "trillet.get", 0 },
	{ "DELETE", "/v1/batch-calls/{id}", api_trillet_cancel, "trillet.cancel", ROUTE_IDEMPOTENT },
	{ "GET", "/v1/batch-calls/{id}", api_trillet_get, "trillet.get", 0 },
	/* SPEC 4.3, admin */
	{ "POST", "/api/v1/admin/cancel/{id}", api_admin_cancel, "admin.cancel", ROUTE_IDEMPOTENT },
	/* internal: status and metrics (nginx allows them from 127.0.0.1) */
	{ "GET", "/callstop-status", api_internal_status, "internal.status", ROUTE_INTERNAL },
	{ "GET", "/callstop-metrics", api_internal_metrics, "internal.metrics", ROUTE_INTERNAL },
	{ "GET", "/callstop-ready", api_internal_ready, "internal.ready", ROUTE_INTERNAL },
};

#define ROUTER_NROUTES (sizeof(router_routes) / sizeof(router_routes[0]))

/* Every route name once, and "-" for requests no route matched. */
size_t router_names(const char **names, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i <= ROUTER_NROUTES; i++) {
		const char *name = i < ROUTER_NROUTES ? router_routes[i].name : "-";

		for (j = 0; j < n && strcmp(names[j], name) != 0; j++)
			;
		if (j == n && n < max)
			names[n++] = name;
	}
	return n;
}

static const struct {
	const char *prefix;
	enum api_family family;
} router_families[] = {
	/* longest prefix first */
	{ "/api/v1/admin/", API_ADMIN },
	{ "/api/v1/", API_HEPPU },
	{ "/v1/api/batch-calls", API_TRILLET },
	{ "/v1/batch-calls", API_TRILLET },
};

enum api_family router_family(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(router_families) / sizeof(router_families[0]); i++)
		if (strncmp(path, router_families[i].prefix, strlen(router_families[i].prefix)) == 0)
			return router_families[i].family;
	return API_UNIFIED;
}

/* Match path against pattern; on a match copy the {id} segment into id. */
static int router_match(const char *pattern, const char *path, char *id, size_t idlen)
{
	const char *brace = strstr(pattern, "{id}");
	size_t pre, seg;

	id[0] = '\0';
	if (brace == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(brace - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return 0;
	path += pre;
	seg = strcspn(path, "/");
	if (seg == 0 || seg >= idlen || strcmp(path + seg, brace + 4) != 0)
		return 0;
	memcpy(id, path, seg);
	id[seg] = '\0';
	return 1;
}

void router_dispatch(struct request *r, struct worker_ctx *ctx)
{
	char id[ROUTER_ID_MAX];
	char allow[64] = "";
	size_t i;

	for (i = 0; i < ROUTER_NROUTES; i++) {
		const struct route *rt = &router_routes[i];

		if ((rt->flags & ROUTE_INTERNAL) && !api_internal_allowed(r))
			continue;
		if (!router_match(rt->pattern, r->path, id, sizeof(id)))
			continue;
		if (strcmp(rt->method, r->method) == 0) {
			r->route = rt->name;
			/* ids are UTF-8 text (and PostgreSQL would refuse other
			 * bytes); anything else names nothing */
			if (!json_utf8_valid(id, strlen(id))) {
				api_error(r, router_family(r->path), 404, "not_found", "Not found");
				return;
			}
			fault_route(ctx->cfg, rt->name, r->request_id);
			if (rt->flags & ROUTE_IDEMPOTENT)
				idem_dispatch(r, ctx, router_family(r->path), rt->name, rt->handler,
					      id[0] ? id : NULL);
			else
				rt->handler(r, ctx, id[0] ? id : NULL);
			return;
		}
		if (strstr(allow, rt->method) == NULL) {
			size_t used = strlen(allow);
			snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "", rt->method);
		}
	}
	if (allow[0] != '\0') {
		char msg[128];

		/* echoed only if it is a short RFC 9110 token: other bytes (the
		 * fuzzer sent 0xa0) would make the body invalid UTF-8 */
		if (strlen(r->method) <= 16 && strspn(r->method, ROUTER_TCHAR) == strlen(r->method))
			snprintf(msg, sizeof(msg), "Method %s not allowed; use %s", r->method, allow);
		else
			snprintf(msg, sizeof(msg), "Method not allowed; use %s", allow);
		request_add_header(r, "Allow", allow);
		api_error(r, router_family(r->path), 405, "method_not_allowed", msg);
		return;
	}
	api_error(r, router_family(r->path), 404, "not_found", "Not found");
}
