/*
 * auth_test.c - unit tests for the database-free part of src/common/auth.c
 * (SPEC 2: token format, generation, hashing).  auth_lookup_key needs a
 * database and is covered by the end-to-end tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/auth.h"

#define BODY40 "abcdefghijABCDEFGHIJ0123456789klmnopQRST"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static void test_well_formed_good(void **state)
{
	(void)state;
	assert_int_equal(strlen(BODY40), AUTH_TOKEN_BODY_LEN);
	assert_int_equal(auth_token_well_formed("csk_" BODY40, AUTH_KEY_PREFIX), 1);
	assert_int_equal(auth_token_well_formed("csa_" BODY40, AUTH_ADMIN_PREFIX), 1);
	assert_int_equal(
		auth_token_well_formed("csk_0000000000000000000000000000000000000000", AUTH_KEY_PREFIX), 1);
	assert_int_equal(
		auth_token_well_formed("csk_zzzzzzzzzzzzzzzzzzzzZZZZZZZZZZZZZZZZZZZZ", AUTH_KEY_PREFIX), 1);
}

static void test_well_formed_bad_prefix(void **state)
{
	(void)state;
	assert_int_equal(auth_token_well_formed("csa_" BODY40, AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed("csk_" BODY40, AUTH_ADMIN_PREFIX), 0);
	assert_int_equal(auth_token_well_formed("CSK_" BODY40, AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed("csk-" BODY40, AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed("xcsk_" BODY40, AUTH_KEY_PREFIX), 0);
	/* no prefix at all, 44 valid characters */
	assert_int_equal(auth_token_well_formed("abcd" BODY40, AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed(" csk_" BODY40, AUTH_KEY_PREFIX), 0);
}

static void test_well_formed_bad_length(void **state)
{
	char s[AUTH_TOKEN_LEN + 8];

	(void)state;
	assert_int_equal(auth_token_well_formed("", AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed("csk_", AUTH_KEY_PREFIX), 0);
	assert_int_equal(auth_token_well_formed(NULL, AUTH_KEY_PREFIX), 0);

	/* 39 characters */
	memcpy(s, "csk_" BODY40, AUTH_TOKEN_LEN + 1);
	s[AUTH_TOKEN_LEN - 1] = '\0';
	assert_int_equal(auth_token_well_formed(s, AUTH_KEY_PREFIX), 0);
	/* 41 characters */
	memcpy(s, "csk_" BODY40 "a", AUTH_TOKEN_LEN + 2);
	assert_int_equal(auth_token_well_formed(s, AUTH_KEY_PREFIX), 0);
}

static void test_well_formed_bad_characters(void **state)
{
	static const char bad[] = "-_+/=. \t\n\x7f\x80\xff!~";
	char s[AUTH_TOKEN_LEN + 1];
	size_t i;
	int pos;

	(void)state;
	for (i = 0; i < sizeof(bad) - 1; i++) {
		for (pos = 4; pos < AUTH_TOKEN_LEN; pos += 13) {
			memcpy(s, "csk_" BODY40, sizeof(s));
			s[pos] = bad[i];
			assert_int_equal(auth_token_well_formed(s, AUTH_KEY_PREFIX), 0);
		}
		/* the last character */
		memcpy(s, "csk_" BODY40, sizeof(s));
		s[AUTH_TOKEN_LEN - 1] = bad[i];
		assert_int_equal(auth_token_well_formed(s, AUTH_KEY_PREFIX), 0);
	}
}

static void test_generate_well_formed_and_different(void **state)
{
	char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(auth_token_generate(AUTH_KEY_PREFIX, a), 0);
	assert_int_equal(auth_token_generate(AUTH_KEY_PREFIX, b), 0);
	assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
	assert_int_equal(auth_token_well_formed(a, AUTH_KEY_PREFIX), 1);
	assert_int_equal(auth_token_well_formed(b, AUTH_KEY_PREFIX), 1);
	assert_string_not_equal(a, b);

	assert_int_equal(auth_token_generate(AUTH_ADMIN_PREFIX, a), 0);
	assert_int_equal(auth_token_well_formed(a, AUTH_ADMIN_PREFIX), 1);
	assert_int_equal(auth_token_well_formed(a, AUTH_KEY_PREFIX), 0);
}

#define N_TOKENS 2000

static void test_generate_distribution(void **state)
{
	static char seen[N_TOKENS][AUTH_TOKEN_LEN + 1];
	unsigned long count[256];
	unsigned long total = (unsigned long)N_TOKENS * AUTH_TOKEN_BODY_LEN;
	double expected = (double)total / 62.0;
	size_t i, j;

	(void)state;
	memset(count, 0, sizeof(count));
	for (i = 0; i < N_TOKENS; i++) {
		assert_int_equal(auth_token_generate(AUTH_KEY_PREFIX, seen[i]), 0);
		assert_int_equal(auth_token_well_formed(seen[i], AUTH_KEY_PREFIX), 1);
		for (j = 4; j < AUTH_TOKEN_LEN; j++)
			count[(unsigned char)seen[i][j]]++;
	}
	/* all distinct */
	for (i = 0; i < N_TOKENS; i++)
		for (j = i + 1; j < N_TOKENS; j++)
			assert_string_not_equal(seen[i], seen[j]);
	/* every one of the 62 characters appears, each near 1/62 of the
	 * 80000 (expected ~1290, sd ~36: the bounds are > 8 sd away) */
	for (i = 0; i < sizeof(alphabet) - 1; i++) {
		unsigned long c = count[(unsigned char)alphabet[i]];

		assert_true(c > 0);
		assert_true((double)c > expected * 0.75);
		assert_true((double)c < expected * 1.25);
	}
}

static void test_generate_bad_prefix(void **state)
{
	char out[AUTH_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(auth_token_generate("toolong_", out), -1);
	assert_int_equal(auth_token_generate("cs", out), -1);
}

static void test_hash_abc(void **state)
{
	static const uint8_t want[AUTH_HASH_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t out[AUTH_HASH_LEN];

	(void)state;
	memset(out, 0, sizeof(out));
	assert_int_equal(auth_hash("abc", out), 0);
	assert_memory_equal(out, want, AUTH_HASH_LEN);
}

static void test_hash_empty(void **state)
{
	/* SHA-256("") = e3b0c442...7852b855 */
	static const uint8_t want[AUTH_HASH_LEN] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
		0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
		0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	uint8_t out[AUTH_HASH_LEN];

	(void)state;
	assert_int_equal(auth_hash("", out), 0);
	assert_memory_equal(out, want, AUTH_HASH_LEN);
}

static void test_hash_distinguishes(void **state)
{
	uint8_t a[AUTH_HASH_LEN], b[AUTH_HASH_LEN];

	(void)state;
	assert_int_equal(auth_hash("csk_" BODY40, a), 0);
	assert_int_equal(auth_hash("csa_" BODY40, b), 0);
	assert_memory_not_equal(a, b, AUTH_HASH_LEN);
	assert_int_equal(auth_hash("csk_" BODY40, b), 0);
	assert_memory_equal(a, b, AUTH_HASH_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_well_formed_good),
		cmocka_unit_test(test_well_formed_bad_prefix),
		cmocka_unit_test(test_well_formed_bad_length),
		cmocka_unit_test(test_well_formed_bad_characters),
		cmocka_unit_test(test_generate_well_formed_and_different),
		cmocka_unit_test(test_generate_distribution),
		cmocka_unit_test(test_generate_bad_prefix),
		cmocka_unit_test(test_hash_abc),
		cmocka_unit_test(test_hash_empty),
		cmocka_unit_test(test_hash_distinguishes),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
