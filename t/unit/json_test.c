/*
 * json_test.c - unit tests for src/common/json.c (SPEC 3 JSON rules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"

/* n nested arrays: "[[...]]" (n levels, top-level array is level 1). */
static char *nested_arrays(int n)
{
	char *s = malloc((size_t)n * 2 + 1);
	int i;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	s[2 * n] = '\0';
	return s;
}

static cJSON *parse_str(const char *s)
{
	return json_parse(s, strlen(s));
}

static void test_parse_valid_object(void **state)
{
	const char *s = "{\"a\":1,\"b\":\"x\",\"c\":[true,false,null],\"d\":{\"e\":1.5}}";
	cJSON *root = parse_str(s);
	const cJSON *a, *b, *c, *d;

	(void)state;
	assert_non_null(root);
	assert_true(cJSON_IsObject(root));
	a = cJSON_GetObjectItemCaseSensitive(root, "a");
	b = cJSON_GetObjectItemCaseSensitive(root, "b");
	c = cJSON_GetObjectItemCaseSensitive(root, "c");
	d = cJSON_GetObjectItemCaseSensitive(root, "d");
	assert_true(cJSON_IsNumber(a));
	assert_int_equal(a->valueint, 1);
	assert_true(cJSON_IsString(b));
	assert_string_equal(b->valuestring, "x");
	assert_true(cJSON_IsArray(c));
	assert_int_equal(cJSON_GetArraySize(c), 3);
	assert_true(cJSON_IsObject(d));
	cJSON_Delete(root);

	root = parse_str("{}");
	assert_non_null(root);
	assert_true(cJSON_IsObject(root));
	cJSON_Delete(root);
}

static void test_parse_valid_scalars(void **state)
{
	static const char *const ok[] = { "1", "\"s\"", "true", "null", "[]", " [1, 2] " };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cJSON *root = parse_str(ok[i]);
		assert_non_null(root);
		cJSON_Delete(root);
	}
}

static void test_parse_length_not_nul_terminated(void **state)
{
	/* Only len bytes count; what follows them must be ignored. */
	const char buf[] = "{\"a\":1}GARBAGE";
	cJSON *root = json_parse(buf, 7);

	(void)state;
	assert_non_null(root);
	cJSON_Delete(root);
}

static void test_parse_trailing_whitespace(void **state)
{
	cJSON *root = parse_str("{\"a\":1} \t\r\n  ");

	(void)state;
	assert_non_null(root);
	cJSON_Delete(root);
	root = parse_str("\n {\"a\":1}\n");
	assert_non_null(root);
	cJSON_Delete(root);
}

static void test_parse_trailing_garbage(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1}x", "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":1},", "{\"a\":1}\n}", "1 2", "[] []",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(parse_str(bad[i]));
}

static void test_parse_trailing_nul(void **state)
{
	/* An embedded NUL after the value is not whitespace. */
	const char buf[] = "{\"a\":1}\0 ";

	(void)state;
	assert_null(json_parse(buf, sizeof(buf) - 1));
	assert_null(json_parse(buf, 8));
}

static void test_parse_empty(void **state)
{
	(void)state;
	assert_null(json_parse("", 0));
	assert_null(json_parse("{}", 0));
	assert_null(parse_str("   "));
	assert_null(parse_str("\n"));
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"{", "{\"a\":}", "{'a':1}", "[1,]", "{\"a\" 1}", "nul", "\"unterminated",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(parse_str(bad[i]));
}

static void test_depth_16_ok_17_rejected(void **state)
{
	char *s16 = nested_arrays(JSON_MAX_DEPTH);
	char *s17 = nested_arrays(JSON_MAX_DEPTH + 1);
	cJSON *root;

	(void)state;
	assert_int_equal(JSON_MAX_DEPTH, 16);
	root = parse_str(s16);
	assert_non_null(root);
	assert_int_equal(json_depth(root), 16);
	cJSON_Delete(root);
	assert_null(parse_str(s17));
	free(s16);
	free(s17);
}

static void test_depth_objects_16_ok_17_rejected(void **state)
{
	/* {"a":{"a":...{"a":1}...}}: n objects plus the scalar at level n+1. */
	char buf[512];
	size_t used = 0;
	int i;
	cJSON *root;

	(void)state;
	/* 15 objects + scalar = depth 16 */
	for (i = 0; i < 15; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "{\"a\":");
	used += (size_t)snprintf(buf + used, sizeof(buf) - used, "1");
	for (i = 0; i < 15; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "}");
	root = parse_str(buf);
	assert_non_null(root);
	assert_int_equal(json_depth(root), 16);
	cJSON_Delete(root);

	/* 16 objects + scalar = depth 17 */
	used = 0;
	for (i = 0; i < 16; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "{\"a\":");
	used += (size_t)snprintf(buf + used, sizeof(buf) - used, "1");
	for (i = 0; i < 16; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "}");
	assert_null(parse_str(buf));
}

static void test_deep_nesting_5000(void **state)
{
	char *s = nested_arrays(5000);

	(void)state;
	assert_null(parse_str(s));
	/* Unbalanced too (only openings). */
	s[5000] = '\0';
	assert_null(parse_str(s));
	free(s);
}

static void test_json_depth(void **state)
{
	cJSON *item;

	(void)state;
	item = cJSON_CreateNumber(1);
	assert_int_equal(json_depth(item), 1);
	cJSON_Delete(item);
	item = cJSON_CreateString("x");
	assert_int_equal(json_depth(item), 1);
	cJSON_Delete(item);
	item = cJSON_CreateNull();
	assert_int_equal(json_depth(item), 1);
	cJSON_Delete(item);
	item = cJSON_CreateArray();
	assert_int_equal(json_depth(item), 1);
	cJSON_Delete(item);
	item = cJSON_CreateObject();
	assert_int_equal(json_depth(item), 1);
	cJSON_Delete(item);

	/* SPEC 3: the top-level value is level 1 and every value is one level
	 * below its container, so the scalar in [[1]] is at level 3.  (The
	 * example "[[1]] is 2" in json.h's comment disagrees; json_parse's
	 * 16/17 boundary above follows the SPEC reading.) */
	item = parse_str("[[1]]");
	assert_non_null(item);
	assert_int_equal(json_depth(item), 3);
	cJSON_Delete(item);
	item = parse_str("[1]");
	assert_non_null(item);
	assert_int_equal(json_depth(item), 2);
	cJSON_Delete(item);
	item = parse_str("[[]]");
	assert_non_null(item);
	assert_int_equal(json_depth(item), 2);
	cJSON_Delete(item);
	item = parse_str("{\"a\":[1],\"b\":{\"c\":{\"d\":[]}}}");
	assert_non_null(item);
	assert_int_equal(json_depth(item), 4);
	cJSON_Delete(item);
}

static void test_add_string_or_null(void **state)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *s, *n;
	char *out;

	(void)state;
	assert_non_null(obj);
	s = json_add_string_or_null(obj, "s", "v\"al");
	n = json_add_string_or_null(obj, "n", NULL);
	assert_non_null(s);
	assert_non_null(n);
	assert_true(cJSON_IsString(s));
	assert_string_equal(s->valuestring, "v\"al");
	assert_true(cJSON_IsNull(n));
	assert_ptr_equal(cJSON_GetObjectItemCaseSensitive(obj, "s"), s);
	assert_ptr_equal(cJSON_GetObjectItemCaseSensitive(obj, "n"), n);
	out = json_print(obj);
	assert_non_null(out);
	assert_string_equal(out, "{\"s\":\"v\\\"al\",\"n\":null}");
	free(out);
	cJSON_Delete(obj);
}

static void test_print_unformatted(void **state)
{
	cJSON *root = parse_str("{ \"a\" : [ 1 , 2 ] ,\n \"b\" : { } }");
	char *out;

	(void)state;
	assert_non_null(root);
	out = json_print(root);
	assert_non_null(out);
	assert_string_equal(out, "{\"a\":[1,2],\"b\":{}}");
	free(out);
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid_object),
		cmocka_unit_test(test_parse_valid_scalars),
		cmocka_unit_test(test_parse_length_not_nul_terminated),
		cmocka_unit_test(test_parse_trailing_whitespace),
		cmocka_unit_test(test_parse_trailing_garbage),
		cmocka_unit_test(test_parse_trailing_nul),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_depth_16_ok_17_rejected),
		cmocka_unit_test(test_depth_objects_16_ok_17_rejected),
		cmocka_unit_test(test_deep_nesting_5000),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_add_string_or_null),
		cmocka_unit_test(test_print_unformatted),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
