/*
 * query_fuzz.c - the query-string parsers (src/http/request.c): the one
 * lookup and decoder every family uses (request_query: the unified limit,
 * cursor, status and force, Heppu's page, limit, agentId, status) and the
 * strict RFC 3339 reader of Heppu's startDate/endDate (request_time).
 *
 * Invariants: a value found fits its buffer, is UTF-8 and holds no NUL; a
 * time accepted comes out as a time accepted again, unchanged (what reaches
 * PostgreSQL is normalised once), and never longer than its buffer.
 */
#include "config.h"

#include <string.h>

#include "common/json.h"
#include "http/request.h"
#include "fuzz.h"

static void query_fuzz_time(const char *s)
{
	char out[64], again[64];
	size_t len;

	if (request_time(s, out, sizeof(out)) < 0)
		return;
	len = strlen(out);
	FUZZ_CHECK(len >= 20 && len < sizeof(out));
	FUZZ_CHECK(out[4] == '-' && out[7] == '-' && out[10] == 'T');
	FUZZ_CHECK(out[len - 1] == 'Z' || out[len - 6] == '+' || out[len - 6] == '-');
	FUZZ_CHECK(request_time(out, again, sizeof(again)) == 0 && strcmp(out, again) == 0);
	/* a buffer one byte short is refused, never filled with a cut value */
	FUZZ_CHECK(request_time(s, again, len) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "limit",   "cursor", "status",  "force", "startDate",
					     "endDate", "page",   "agentId", "a",     "" };
	static const size_t lens[] = { 1, 2, 16, 64, 129 };
	char *query = fuzz_cstring(data, size);
	struct request r;
	size_t i, j;

	if (query == NULL)
		return 0;
	request_init(&r, NULL, NULL, 0, 0);
	r.query = query;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			char out[129];
			int got = request_query(&r, names[i], out, lens[j]);

			FUZZ_CHECK(got >= -1 && got <= 1);
			if (got != 1)
				continue;
			FUZZ_CHECK(strlen(out) < lens[j]);
			FUZZ_CHECK(json_utf8_valid(out, strlen(out)));
			query_fuzz_time(out);
		}
	}
	query_fuzz_time(query);
	request_free(&r);
	free(query);
	return 0;
}
