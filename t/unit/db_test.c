/*
 * db_test.c - unit tests for the row-contract helpers of src/common/db.c:
 * db_text_array(), the text[] literal the cancel's ids travel in ("Array
 * Value Input" in the PostgreSQL manual).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/db.h"

static void expect_array(const char *const *v, size_t n, const char *want)
{
	char *got = db_text_array(v, n);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_empty(void **state)
{
	(void)state;
	expect_array(NULL, 0, "{}");
}

static void test_plain(void **state)
{
	static const char *const v[] = { "call", "batch", "call_or_openai" };

	(void)state;
	expect_array(v, 3, "{\"call\",\"batch\",\"call_or_openai\"}");
}

/* Quotes and backslashes are escaped; everything else is data inside the
 * quotes: the word NULL, the empty string, braces, commas, spaces. */
static void test_quoting(void **state)
{
	static const char *const v[] = { "a\"b", "c\\d", "NULL", "", "{x,y}", " sp ", "\\\"" };

	(void)state;
	expect_array(v, 7, "{\"a\\\"b\",\"c\\\\d\",\"NULL\",\"\",\"{x,y}\",\" sp \",\"\\\\\\\"\"}");
}

static void test_utf8_untouched(void **state)
{
	static const char *const v[] = { "h\xc3\xa9llo" };

	(void)state;
	expect_array(v, 1, "{\"h\xc3\xa9llo\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_utf8_untouched),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
