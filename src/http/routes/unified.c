/*
 * unified.c - what the unified routes share (SPEC 3, 10, 12): the body
 * checks in SPEC 3's order, a boolean member, a page's limit, who asks.
 */
#include "http/routes/unified.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"

void unified_invalid(struct request *r, const char *message)
{
	api_error(r, API_UNIFIED, 400, "invalid_request", message);
}

/*
 * The body checks every POST shares, in SPEC 3's order: size (413), media
 * type (415), JSON (400 invalid_json).  An empty body yields *root = NULL
 * when allow_empty.  Returns 0, or -1 after answering.
 */
int unified_body(struct request *r, struct worker_ctx *ctx, int allow_empty, cJSON **root)
{
	*root = NULL;
	if (r->body_len > ctx->cfg->max_body_bytes) {
		api_error(r, API_UNIFIED, 413, "payload_too_large", "Request body too large");
		return -1;
	}
	if (r->body_len == 0 && allow_empty)
		return 0;
	if (r->body_len > 0 && !request_content_type_is_json(r)) {
		api_error(r, API_UNIFIED, 415, "unsupported_media_type",
			  "Content-Type must be application/json");
		return -1;
	}
	*root = json_parse(r->body, r->body_len);
	if (*root == NULL) {
		api_error(r, API_UNIFIED, 400, "invalid_json",
			  "Request body is not valid JSON (or nests deeper than 16 levels)");
		return -1;
	}
	if (!cJSON_IsObject(*root)) {
		cJSON_Delete(*root);
		*root = NULL;
		unified_invalid(r, "Request body must be a JSON object");
		return -1;
	}
	if (json_duplicate_key(*root) != 0) {
		cJSON_Delete(*root);
		*root = NULL;
		unified_invalid(r, "Request body repeats a key in an object");
		return -1;
	}
	return 0;
}

int unified_bool_member(const cJSON *root, const char *name)
{
	const cJSON *f = root ? cJSON_GetObjectItemCaseSensitive(root, name) : NULL;

	if (f == NULL)
		return 0;
	if (!cJSON_IsBool(f))
		return -1;
	return cJSON_IsTrue(f) ? 1 : 0;
}

int unified_limit(struct request *r, int def)
{
	char v[16], *end = NULL;
	long l;
	int got = request_query(r, "limit", v, sizeof(v));

	if (got == 0)
		return def;
	l = got > 0 && v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : 0;
	if (end == NULL || *end != '\0' || l < 1 || l > UNIFIED_LIMIT_MAX) {
		unified_invalid(r, "limit must be an integer from 1 to 1000");
		return -1;
	}
	return (int)l;
}

void unified_campaign_who(const struct request *r, const struct auth_identity *id, void (*answer)(void *),
			  void *arg, struct campaign_who *cw)
{
	cw->tenant_id = id->tenant_id;
	cw->key_id = id->key_id;
	cw->route = r->route;
	cw->request_id = r->request_id;
	cw->answer = answer;
	cw->answer_arg = arg;
}
