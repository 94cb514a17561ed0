/*
 * request_test.c - unit tests for src/http/request.c: the request as the handlers
 * see it, built from a fake FastCGI environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/request.h"

static char *base_env[] = {
	"REQUEST_METHOD=POST",
	"DOCUMENT_URI=/calls/cancel",
	"QUERY_STRING=limit=5&cursor=ab%2Bc&status=pending&empty=&flag&plus=a+b",
	"CONTENT_TYPE=Application/JSON; charset=utf-8",
	"HTTP_X_API_KEY=csk_xyz",
	NULL,
};

static void init_query(struct request *r, char **env, const char *query)
{
	request_init(r, env, NULL, 0, 0);
	r->query = query;
}

static void test_init_fields(void **state)
{
	struct request r;
	static const char body[] = "{\"a\":1}";

	(void)state;
	memset(&r, 0x5a, sizeof(r));
	request_init(&r, base_env, body, sizeof(body) - 1, 12345);
	assert_ptr_equal(r.envp, base_env);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/calls/cancel");
	assert_string_equal(r.query, "limit=5&cursor=ab%2Bc&status=pending&empty=&flag&plus=a+b");
	assert_string_equal(r.request_id, "-");
	assert_ptr_equal(r.body, body);
	assert_int_equal(r.body_len, sizeof(body) - 1);
	assert_true(r.start_ms == 12345);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.headers, "");
	assert_null(r.body_out);
	assert_string_equal(r.route, "-");
	assert_int_equal(r.tenant_id, 0);
	request_free(&r);
}

static void test_init_defaults(void **state)
{
	static char *env[] = { "REQUEST_ID=0123abcd", "SCRIPT_NAME=/v1/x", NULL };
	struct request r;

	(void)state;
	request_init(&r, env, NULL, 0, 0);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/v1/x");
	assert_string_equal(r.query, "");
	assert_string_equal(r.request_id, "0123abcd");
	assert_null(r.body);
	request_free(&r);

	request_init(&r, NULL, NULL, 0, 0);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/");
	assert_string_equal(r.query, "");
	assert_string_equal(r.request_id, "-");
	assert_null(request_param(&r, "CONTENT_TYPE"));
	assert_int_equal(request_content_type_is_json(&r), 0);
	request_free(&r);
}

static void test_param(void **state)
{
	struct request r;

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	assert_string_equal(request_param(&r, "HTTP_X_API_KEY"), "csk_xyz");
	assert_string_equal(request_param(&r, "CONTENT_TYPE"), "Application/JSON; charset=utf-8");
	assert_null(request_param(&r, "HTTP_X_API"));
	assert_null(request_param(&r, "CONTENT_LENGTH"));
	request_free(&r);
}

static void test_query_found(void **state)
{
	struct request r;
	char out[64];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	assert_int_equal(request_query(&r, "limit", out, sizeof(out)), 1);
	assert_string_equal(out, "5");
	assert_int_equal(request_query(&r, "status", out, sizeof(out)), 1);
	assert_string_equal(out, "pending");
	request_free(&r);
}

static void test_query_absent(void **state)
{
	struct request r;
	char out[64];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	strcpy(out, "untouched");
	assert_int_equal(request_query(&r, "absent", out, sizeof(out)), 0);
	/* prefixes and extensions of present names are not those names */
	assert_int_equal(request_query(&r, "lim", out, sizeof(out)), 0);
	assert_int_equal(request_query(&r, "limitx", out, sizeof(out)), 0);
	assert_int_equal(request_query(&r, "fla", out, sizeof(out)), 0);
	assert_int_equal(request_query(&r, "pending", out, sizeof(out)), 0);
	assert_int_equal(request_query(&r, "5", out, sizeof(out)), 0);
	assert_string_equal(out, "untouched");
	request_free(&r);

	request_init(&r, NULL, NULL, 0, 0);
	assert_int_equal(request_query(&r, "limit", out, sizeof(out)), 0);
	request_free(&r);
}

static void test_query_empty_and_flag(void **state)
{
	struct request r;
	char out[8];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	strcpy(out, "xx");
	assert_int_equal(request_query(&r, "empty", out, sizeof(out)), 1);
	assert_string_equal(out, "");
	strcpy(out, "xx");
	assert_int_equal(request_query(&r, "flag", out, sizeof(out)), 1);
	assert_string_equal(out, "");
	/* "" still needs room for its NUL */
	assert_int_equal(request_query(&r, "empty", out, 1), 1);
	assert_int_equal(request_query(&r, "flag", out, 1), 1);
	assert_int_equal(request_query(&r, "empty", out, 0), -1);
	assert_int_equal(request_query(&r, "flag", out, 0), -1);
	request_free(&r);
}

static void test_query_decoding(void **state)
{
	struct request r;
	char out[64];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	/* %2B is a literal '+', not a space */
	assert_int_equal(request_query(&r, "cursor", out, sizeof(out)), 1);
	assert_string_equal(out, "ab+c");
	request_free(&r);

	init_query(&r, NULL, "q=a%26b%3Dc&x=%41%62%2f%20&eq=a=b&utf=%C3%A9");
	assert_int_equal(request_query(&r, "q", out, sizeof(out)), 1);
	assert_string_equal(out, "a&b=c");
	assert_int_equal(request_query(&r, "x", out, sizeof(out)), 1);
	assert_string_equal(out, "Ab/ ");
	assert_int_equal(request_query(&r, "eq", out, sizeof(out)), 1);
	assert_string_equal(out, "a=b");
	assert_int_equal(request_query(&r, "utf", out, sizeof(out)), 1);
	assert_string_equal(out, "\xc3\xa9");
	request_free(&r);
}

static void test_query_plus_is_space(void **state)
{
	struct request r;
	char out[64];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	assert_int_equal(request_query(&r, "plus", out, sizeof(out)), 1);
	assert_string_equal(out, "a b");
	request_free(&r);

	init_query(&r, NULL, "s=++a+%2B+");
	assert_int_equal(request_query(&r, "s", out, sizeof(out)), 1);
	assert_string_equal(out, "  a + ");
	request_free(&r);
}

static void test_query_too_long(void **state)
{
	struct request r;
	char out[16];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	/* "pending" is 7 bytes: fits in 8, not in 7 */
	assert_int_equal(request_query(&r, "status", out, 8), 1);
	assert_string_equal(out, "pending");
	assert_int_equal(request_query(&r, "status", out, 7), -1);
	assert_int_equal(request_query(&r, "limit", out, 2), 1);
	assert_string_equal(out, "5");
	assert_int_equal(request_query(&r, "limit", out, 1), -1);
	/* the decoded length counts: "ab+c" is 4 bytes from 6 */
	assert_int_equal(request_query(&r, "cursor", out, 5), 1);
	assert_string_equal(out, "ab+c");
	assert_int_equal(request_query(&r, "cursor", out, 4), -1);
	request_free(&r);
}

static void test_query_nul_escape(void **state)
{
	struct request r;
	char out[64];

	(void)state;
	init_query(&r, NULL, "a=x%00y&b=%00&c=ok");
	assert_int_equal(request_query(&r, "a", out, sizeof(out)), -1);
	assert_int_equal(request_query(&r, "b", out, sizeof(out)), -1);
	assert_int_equal(request_query(&r, "c", out, sizeof(out)), 1);
	assert_string_equal(out, "ok");
	request_free(&r);
}

static void test_query_bad_escape(void **state)
{
	/* request.h: -1 if present but malformed (bad escape, ...). */
	static const char *const queries[] = { "v=%zz", "v=%4", "v=%", "v=ab%g1", "v=%%41" };
	struct request r;
	char out[64];
	size_t i;
	int wrong = 0;

	(void)state;
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		int got;

		init_query(&r, NULL, queries[i]);
		got = request_query(&r, "v", out, sizeof(out));
		if (got != -1) {
			print_message("# %s: got %d (\"%s\"), want -1\n", queries[i], got,
				      got == 1 ? out : "");
			wrong++;
		}
		request_free(&r);
	}
	assert_int_equal(wrong, 0);
}

static int ct_is_json(const char *ct)
{
	char buf[128];
	char *env[2] = { buf, NULL };
	struct request r;
	int got;

	snprintf(buf, sizeof(buf), "CONTENT_TYPE=%s", ct);
	request_init(&r, env, "{}", 2, 0);
	got = request_content_type_is_json(&r);
	request_free(&r);
	return got;
}

static void test_content_type(void **state)
{
	struct request r;
	static char *no_ct[] = { "REQUEST_METHOD=POST", NULL };

	(void)state;
	assert_int_equal(ct_is_json("application/json"), 1);
	assert_int_equal(ct_is_json("application/json;charset=utf-8"), 1);
	assert_int_equal(ct_is_json("application/json; charset=utf-8"), 1);
	assert_int_equal(ct_is_json("application/json ;charset=utf-8"), 1);
	assert_int_equal(ct_is_json(" application/json "), 1);
	assert_int_equal(ct_is_json("\tapplication/json"), 1);
	assert_int_equal(ct_is_json("APPLICATION/JSON"), 1);
	assert_int_equal(ct_is_json("Application/Json"), 1);

	assert_int_equal(ct_is_json("text/plain"), 0);
	assert_int_equal(ct_is_json("application/jsonx"), 0);
	assert_int_equal(ct_is_json("application/json-patch+json"), 0);
	assert_int_equal(ct_is_json("application/"), 0);
	assert_int_equal(ct_is_json("text/json"), 0);
	assert_int_equal(ct_is_json("xapplication/json"), 0);
	assert_int_equal(ct_is_json(""), 0);

	/* the header from base_env */
	request_init(&r, base_env, "{}", 2, 0);
	assert_int_equal(request_content_type_is_json(&r), 1);
	request_free(&r);

	/* absent */
	request_init(&r, no_ct, "{}", 2, 0);
	assert_int_equal(request_content_type_is_json(&r), 0);
	request_free(&r);
}

static void test_reply(void **state)
{
	struct request r;
	cJSON *body;

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	body = cJSON_CreateObject();
	assert_non_null(body);
	assert_non_null(cJSON_AddStringToObject(body, "error", "not_found"));
	assert_non_null(cJSON_AddNumberToObject(body, "n", 3));
	request_reply(&r, 404, body);
	assert_int_equal(r.status, 404);
	assert_non_null(r.body_out);
	assert_string_equal(r.body_out, "{\"error\":\"not_found\",\"n\":3}");

	/* a second reply replaces the first (no leak under valgrind/ASan) */
	body = cJSON_CreateArray();
	assert_non_null(body);
	request_reply(&r, 200, body);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body_out, "[]");

	/* NULL body = empty */
	request_reply(&r, 204, NULL);
	assert_int_equal(r.status, 204);
	assert_null(r.body_out);

	request_reply(&r, 201, cJSON_CreateString("x"));
	request_free(&r);
	assert_null(r.body_out);
	request_free(&r); /* idempotent */
	assert_null(r.body_out);
}

static void test_add_header(void **state)
{
	struct request r;
	char big[REQUEST_HEADERS_MAX * 2];

	(void)state;
	request_init(&r, base_env, NULL, 0, 0);
	request_add_header(&r, "Retry-After", "1");
	assert_string_equal(r.headers, "Retry-After: 1\r\n");
	request_add_header(&r, "Allow", "GET, POST");
	assert_string_equal(r.headers, "Retry-After: 1\r\nAllow: GET, POST\r\n");

	/* overflow stays inside the buffer and keeps what was there */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	request_add_header(&r, "X-Big", big);
	assert_true(memchr(r.headers, '\0', sizeof(r.headers)) != NULL);
	assert_true(strncmp(r.headers, "Retry-After: 1\r\nAllow: GET, POST\r\n", 34) == 0);
	request_add_header(&r, "X-More", "1");
	assert_true(memchr(r.headers, '\0', sizeof(r.headers)) != NULL);
	request_free(&r);
}

/* Issue 10 defect 12: a time PostgreSQL would refuse (500) or read as
 * another time is refused here (400). */
static void test_time_strict(void **state)
{
	static const char *const bad[] = {
		"2026-+1-01",
		"2026-01-01T00:00:00+16:00",
		"2026-01-01T00:00:00-16:00",
		"2026-01-01T-1:-1:-1Z",
		"2026-01-01T-1:00:00Z",
		"2026-01-01T00:-1:00Z",
		"2026-01-01T00:00:-1Z",
		"+026-01-01",
		"2026-1-01",
		"2026-01-1",
		" 2026-01-01",
		"2026-01-01 ",
		"2026-01-01T00:00:00Z ",
		"2026-01-01T 0:00:00Z",
		"2026-01-01T00:00:00+1:00",
		"2026-01-01T00:00:00+01:0",
		"2026-01-01T00:00:00+01:-1",
		"2026-01-01T00:00:00+-1:00",
		"2026-01-01T00:00:00+01:60",
		"2026-01-01T24:00:00Z",
		"2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z",
		"2026-01-01T00:00:00",
		"2026-01-01T00:00Z",
		"2026-01-01T00:00:00.Z",
		"2026-01-01T00:00:00.-1Z",
		"2026-02-30",
		"2026-13-01",
		"2026-00-01",
		"2026-01-00",
		"0000-01-01",
		"2026-01-01X00:00:00Z",
		"2026/01/01",
		"yesterday",
		"",
		"2026",
		"2026-01-01T00:00:00ZZ",
		"2026-01-01T00:00:00+0100",
		"2026-01-01T00:00:00+01:00:00",
	};
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "2026-01-01", "2026-01-01T00:00:00Z" },
		{ "2026-02-28T23:59:59Z", "2026-02-28T23:59:59Z" },
		{ "2024-02-29t10:00:00z", "2024-02-29T10:00:00Z" },
		{ "2026-03-05T02:00:00+02:00", "2026-03-05T02:00:00+02:00" },
		{ "2026-03-07T23:30:00-00:30", "2026-03-07T23:30:00-00:30" },
		{ "2026-01-01T00:00:00+15:59", "2026-01-01T00:00:00+15:59" },
		{ "2026-01-01T00:00:00-15:59", "2026-01-01T00:00:00-15:59" },
		{ "2026-03-05T00:00:00.000000Z", "2026-03-05T00:00:00.000000Z" },
		{ "0001-01-01", "0001-01-01T00:00:00Z" },
		{ "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (request_time(bad[i], out, sizeof(out)) == 0)
			print_error("accepted: '%s' as '%s'\n", bad[i], out);
		assert_int_equal(request_time(bad[i], out, sizeof(out)), -1);
	}
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(request_time(ok[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, ok[i].out);
	}
	/* what does not fit out is refused, never cut */
	assert_int_equal(request_time("2026-01-01", out, 20), -1);
	assert_int_equal(request_time("2026-01-01", out, 21), 0);
	assert_int_equal(request_time("2026-01-01T00:00:00Z", out, 20), -1);
	assert_int_equal(request_time("2026-01-01T00:00:00Z", out, 21), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_fields),
		cmocka_unit_test(test_init_defaults),
		cmocka_unit_test(test_param),
		cmocka_unit_test(test_query_found),
		cmocka_unit_test(test_query_absent),
		cmocka_unit_test(test_query_empty_and_flag),
		cmocka_unit_test(test_query_decoding),
		cmocka_unit_test(test_query_plus_is_space),
		cmocka_unit_test(test_query_too_long),
		cmocka_unit_test(test_query_nul_escape),
		cmocka_unit_test(test_query_bad_escape),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_add_header),
		cmocka_unit_test(test_time_strict),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
