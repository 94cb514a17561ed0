/*
 * ctx.c - see ctx.h.
 */
#include "core/ctx.h"

#include <string.h>

#include "common/log.h"

int ctx_cursor_key(struct worker_ctx *ctx)
{
	PGresult *res;
	unsigned char *raw;
	size_t len = 0;

	if (ctx->cursor_key.len > 0)
		return 0;
	res = db_exec(ctx->db, DB_CURSOR_SECRET, 0, NULL);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		log_error("callstop_secrets has no cursor_hmac_key: run callstopctl migrate");
		PQclear(res);
		return -1;
	}
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, CURSOR_SECRET_VALUE), &len);
	PQclear(res);
	if (raw == NULL || len == 0 || len > CURSOR_KEY_MAX) {
		PQfreemem(raw);
		return -1;
	}
	memcpy(ctx->cursor_key.key, raw, len);
	ctx->cursor_key.len = len;
	PQfreemem(raw);
	return 0;
}
