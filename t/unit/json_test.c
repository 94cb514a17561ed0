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

/* Issue 10 defect 10: a malformed \u escape or a raw control byte inside a
 * string must not parse, or cJSON would cut the string short (the text
 * before the malformation would name a call). */
static void test_string_malformed_escape_rejected(void **state)
{
	static const char *const bad[] = {
		"{\"resource_id\":\"abc\\uZZZZ-anything\"}",
		"{\"resource_id\":[\"abc\\u-XYZ\",\"x\"]}",
		"\"\\u12\"",
		"\"\\u123\"",
		"\"\\u\"",
		"\"\\u12G4\"",
		"\"a\\u00\"",
		"\"\\x41\"",
		"\"\\a\"",
		"\"\\'\"",
		"\"\\U0041\"",
		"\"\\",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *root = parse_str(bad[i]);
		if (root != NULL)
			print_error("accepted: %s\n", bad[i]);
		assert_null(root);
	}
}

static void test_string_raw_control_bytes_rejected(void **state)
{
	/* RFC 8259 section 7: U+0000 through U+001F must be escaped. */
	char buf[32];
	int c;

	(void)state;
	for (c = 0; c < 0x20; c++) {
		int n = snprintf(buf, sizeof(buf), "{\"a\":\"x%cy\"}", c == 0 ? '@' : c);

		if (c == 0)
			buf[7] = '\0';
		assert_null(json_parse(buf, (size_t)n));
		n = snprintf(buf, sizeof(buf), "{\"a%cb\":1}", c == 0 ? '@' : c);
		if (c == 0)
			buf[3] = '\0';
		assert_null(json_parse(buf, (size_t)n));
	}
	/* the uuid followed by a raw NUL, the id of defect 10 */
	assert_null(json_parse("{\"resource_id\":\"abc\0\"}", 22));
}

static void test_string_valid_escapes(void **state)
{
	cJSON *root = parse_str("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\ud83d\\ude00\\u001f\"]");

	(void)state;
	assert_non_null(root);
	assert_string_equal(cJSON_GetArrayItem(root, 0)->valuestring,
			    "\"\\/\b\f\n\r\tA\xc3\xa9\xf0\x9f\x98\x80\x1f");
	cJSON_Delete(root);
}

/* Defect 11: only the four RFC 8259 whitespace characters separate tokens. */
static void test_control_bytes_not_whitespace(void **state)
{
	static const char *const bad[] = {
		"\x01{\"a\":1}", "{\"a\":1}\x01", "{\x0b\"a\":1}", "{\"a\"\x0c:1}",
		"[1,\x1f 2]",    "[1\x7f]",       "\x0b[]",        "[]\x0c",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(parse_str(bad[i]));
	assert_null(json_parse("[\0]", 3));
}

static void test_numbers_rfc8259(void **state)
{
	static const char *const bad[] = {
		"01",  "-01",       "00",   "1.",         "-.5",   ".5",    "+1",    "1e",
		"1e+", "1E-",       "-",    "--1",        "1.e5",  "0x10",  "1.5.2", "Infinity",
		"NaN", "-Infinity", "[01]", "{\"a\":1.}", "[-.5]", "1_000",
	};
	static const char *const ok[] = {
		"0",   "-0",  "1",    "-1",   "10",    "1.5",        "-0.5",
		"1e5", "1E5", "1e+5", "1e-5", "0.0e0", "-12.34E+56", "[0,-0,1.25]",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *root = parse_str(bad[i]);
		if (root != NULL)
			print_error("accepted: %s\n", bad[i]);
		assert_null(root);
	}
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cJSON *root = parse_str(ok[i]);
		if (root == NULL)
			print_error("refused: %s\n", ok[i]);
		assert_non_null(root);
		cJSON_Delete(root);
	}
}

/* Every string of a parsed tree is as long as strlen() says: no NUL hides
 * inside one, so callers may measure with strlen(). */
static void test_strings_have_no_nul(void **state)
{
	cJSON *root = parse_str("{\"k\\u0001\":\"a\\u0001b\",\"l\":[\"\\ud800\\udc00\"]}");

	(void)state;
	assert_non_null(root);
	assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(root, "l")->child->valuestring), 4);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "k\x01")->valuestring, "a\x01"
											  "b");
	cJSON_Delete(root);
	assert_null(parse_str("\"\\u0000\""));
	assert_null(parse_str("\"\\ud800\""));
	assert_null(parse_str("\"\\udc00\\ud800\""));
}

/* Defect 11: a repeated key (first wins in cJSON, last in JavaScript and
 * Python) is found at any depth, however the key is escaped. */
static void test_duplicate_keys(void **state)
{
	static const char *const dup[] = {
		"{\"resource_id\":\"b\",\"resource_id\":1}",
		"{\"a\":1,\"b\":2,\"a\":3}",
		"{\"x\":[{\"k\":1,\"k\":1}]}",
		"{\"x\":{\"y\":{\"k\":1,\"\\u006b\":2}}}",
		"{\"a\":1,\"\\u0061\":1}",
	};
	static const char *const unique[] = {
		"{}",
		"{\"a\":1}",
		"{\"a\":1,\"A\":2}",
		"{\"a\":{\"a\":1}}",
		"[{\"a\":1},{\"a\":2}]",
		"1",
		"[]",
		"{\"a\":1,\"ab\":2,\"b\":3,\"ba\":4,\"\":5}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dup) / sizeof(dup[0]); i++) {
		cJSON *root = parse_str(dup[i]);
		assert_non_null(root);
		assert_int_equal(json_duplicate_key(root), 1);
		cJSON_Delete(root);
	}
	for (i = 0; i < sizeof(unique) / sizeof(unique[0]); i++) {
		cJSON *root = parse_str(unique[i]);
		assert_non_null(root);
		assert_int_equal(json_duplicate_key(root), 0);
		cJSON_Delete(root);
	}
}

static void test_duplicate_keys_many(void **state)
{
	/* 5000 distinct keys, then one repeated: sorted, not compared pairwise */
	size_t cap = 5000 * 12 + 64, used = 0;
	char *s = malloc(cap);
	cJSON *root;
	int i;

	(void)state;
	assert_non_null(s);
	used += (size_t)snprintf(s + used, cap - used, "{");
	for (i = 0; i < 5000; i++)
		used += (size_t)snprintf(s + used, cap - used, "\"k%d\":1,", i);
	used += (size_t)snprintf(s + used, cap - used, "\"z\":0}");
	root = json_parse(s, used);
	assert_non_null(root);
	assert_int_equal(json_duplicate_key(root), 0);
	cJSON_Delete(root);
	used = used - 6 + (size_t)snprintf(s + used - 6, cap - (used - 6), "\"k42\":0}");
	root = json_parse(s, used);
	assert_non_null(root);
	assert_int_equal(json_duplicate_key(root), 1);
	cJSON_Delete(root);
	free(s);
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
		cmocka_unit_test(test_string_malformed_escape_rejected),
		cmocka_unit_test(test_string_raw_control_bytes_rejected),
		cmocka_unit_test(test_string_valid_escapes),
		cmocka_unit_test(test_control_bytes_not_whitespace),
		cmocka_unit_test(test_numbers_rfc8259),
		cmocka_unit_test(test_strings_have_no_nul),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_duplicate_keys_many),
		cmocka_unit_test(test_add_string_or_null),
		cmocka_unit_test(test_print_unformatted),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
