/*
 * api.c - see api.h.
 */
#include "http/api.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

cJSON *api_error_body(const struct request *r, enum api_family family, int status, const char *code,
		      const char *message)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *err;

	switch (family) {
	case API_HEPPU:
		/* {"error": {"message": "...", "code": 404}} (SPEC 4.1) */
		err = cJSON_AddObjectToObject(body, "error");
		cJSON_AddStringToObject(err, "message", message);
		cJSON_AddNumberToObject(err, "code", status);
		break;
	case API_TRILLET:
		/* {"error": "Unauthorized", "message": "..."} (SPEC 4.2) */
		cJSON_AddStringToObject(body, "error", code);
		cJSON_AddStringToObject(body, "message", message);
		break;
	case API_ADMIN:
		/* {"ok": false, "error": "..."} (SPEC 4.3) */
		cJSON_AddFalseToObject(body, "ok");
		cJSON_AddStringToObject(body, "error", message);
		break;
	case API_UNIFIED:
	default:
		err = cJSON_AddObjectToObject(body, "error");
		cJSON_AddStringToObject(err, "code", code);
		cJSON_AddStringToObject(err, "message", message);
		cJSON_AddStringToObject(body, "request_id", r->request_id);
		break;
	}
	return body;
}

void api_error(struct request *r, enum api_family family, int status, const char *code, const char *message)
{
	cJSON *body = api_error_body(r, family, status, code, message);

	if (status == 503)
		request_add_header(r, "Retry-After", "1");
	request_reply(r, status, body);
}

void api_db_error(struct request *r, const struct worker_ctx *ctx, enum api_family family)
{
	if (db_last_error(ctx->db) == DB_UNAVAILABLE) {
		api_error(r, family, 503,
			  family == API_TRILLET ? "Service Unavailable" : "database_unavailable",
			  "Database unavailable; nothing was changed. Retry.");
		return;
	}
	/* the server refused a statement (logged with its SQLSTATE where it
	 * happened): a fault of ours, not an outage the client should retry */
	api_error(r, family, 500, family == API_TRILLET ? "Internal Server Error" : "internal_error",
		  "Internal error; the server log has the details under this request id");
}

/* The 401 of each family (SPEC 2, 4). */
static void api_unauthorized(struct request *r, enum api_family family, const char *why)
{
	switch (family) {
	case API_HEPPU:
	case API_ADMIN:
		api_error(r, family, 401, "unauthorized", "Unauthorized");
		break;
	case API_TRILLET:
		api_error(r, family, 401, "Unauthorized", why);
		break;
	case API_UNIFIED:
	default:
		api_error(r, family, 401, "unauthorized", why);
		break;
	}
}

int api_auth_key(struct request *r, struct worker_ctx *ctx, enum api_family family, struct auth_identity *id)
{
	const char *key = request_param(r, "HTTP_X_API_KEY");

	if (key == NULL) {
		api_unauthorized(r, family, "Missing or malformed API key");
		return -1;
	}
	switch (auth_lookup_key(ctx->db, key, ctx->cfg->key_cache_ms, clock_monotonic_ms(), id)) {
	case AUTH_OK:
		r->tenant_id = id->tenant_id;
		return 0;
	case AUTH_DB_ERROR:
		api_db_error(r, ctx, family);
		return -1;
	case AUTH_UNKNOWN:
	default:
		api_unauthorized(r, family, "Unknown or revoked API key");
		return -1;
	}
}

int api_auth_unified(struct request *r, struct worker_ctx *ctx, struct auth_identity *id)
{
	const char *frontend = request_param(r, "HTTP_X_FRONTEND_ID");

	if (frontend == NULL || *frontend == '\0') {
		api_unauthorized(r, API_UNIFIED, "Missing X-Frontend-ID");
		return -1;
	}
	if (api_auth_key(r, ctx, API_UNIFIED, id) < 0)
		return -1;
	if (strcmp(frontend, id->frontend_id) != 0) {
		api_error(r, API_UNIFIED, 403, "forbidden", "This API key is not valid for this frontend");
		return -1;
	}
	return 0;
}

int api_auth_admin(struct request *r, struct worker_ctx *ctx, long long *token_id)
{
	const char *token = request_param(r, "HTTP_X_ADMIN_TOKEN");

	switch (token ? auth_lookup_admin(ctx->db, token, ctx->cfg->key_cache_ms, clock_monotonic_ms(),
					  token_id)
		      : AUTH_UNKNOWN) {
	case AUTH_OK:
		return 0;
	case AUTH_DB_ERROR:
		api_db_error(r, ctx, API_ADMIN);
		return -1;
	case AUTH_UNKNOWN:
	default:
		api_unauthorized(r, API_ADMIN, "Unauthorized");
		return -1;
	}
}
