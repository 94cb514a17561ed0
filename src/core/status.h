/*
 * status.h - the status documents of SPEC 3.2.
 */
#ifndef CALLSTOP_STATUS_H
#define CALLSTOP_STATUS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/ctx.h"

#define STATUS_LIMIT_DEFAULT 100
#define STATUS_LIMIT_MAX 1000

enum status_result {
	STATUS_FOUND = 0,
	STATUS_NOT_FOUND,
	STATUS_BAD_CURSOR, /* the cursor was not issued for this batch and filter */
	STATUS_DB_ERROR,
};

/* One page of a batch's entries. */
struct status_page {
	int limit;          /* 1..STATUS_LIMIT_MAX */
	const char *cursor; /* NULL = first page */
	const char *status; /* entry status filter or NULL; "pending" includes claimed */
};

/* The "call" object of SPEC 3.2 for call id of tenant, into *out (caller
 * deletes).  */
enum status_result status_call(struct worker_ctx *ctx, long long tenant_id, const char *id, cJSON **out);

/* The batch status document of SPEC 3.2 (resource fields excluded: "batch",
 * "entries", "next_cursor" as members of *out). */
enum status_result status_batch(struct worker_ctx *ctx, long long tenant_id, const char *id,
				const struct status_page *page, cJSON **out);

#endif
