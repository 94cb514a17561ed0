/*
 * router_fuzz.c - the router's path matching (src/http/router.c): any method
 * and any decoded path (nginx's DOCUMENT_URI: bytes without NUL) through
 * router_dispatch().  Input: "METHOD\npath", or a bare path for GET.
 *
 * No request carries a key, so every route that matches answers 401 before
 * it would reach the database (no handler may touch ctx->db before its
 * authentication).  Invariants: an answer is set, with a status of 401, 404
 * or 405 (405 with an Allow header), a JSON body, and a 401 only from a route
 * that matched.
 */
#include "config.h"

#include <string.h>

#include "common/json.h"
#include "http/router.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf cfg;
	static struct worker_ctx ctx = { .cfg = &cfg, .listen_fd = -1 };
	char *in = fuzz_cstring(data, size), *nl;
	const char *method = "GET", *path;
	struct request r;

	if (in == NULL)
		return 0;
	nl = strchr(in, '\n');
	path = in;
	if (nl != NULL) {
		*nl = '\0';
		method = in;
		path = nl + 1;
	}
	request_init(&r, NULL, NULL, 0, 0);
	r.method = method;
	r.path = path;
	(void)router_family(path);
	router_dispatch(&r, &ctx);
	FUZZ_CHECK(r.status == 401 || r.status == 404 || r.status == 405);
	FUZZ_CHECK(r.body_out != NULL && json_valid(r.body_out, strlen(r.body_out)));
	FUZZ_CHECK((r.status == 405) == (strstr(r.headers, "Allow: ") != NULL));
	FUZZ_CHECK(r.status != 401 || strcmp(r.route, "-") != 0); /* a 401 comes from a route */
	request_free(&r);
	free(in);
	return 0;
}
