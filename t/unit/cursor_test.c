/*
 * cursor_test.c - unit tests for src/common/cursor.c (SPEC 3.2 keyset cursors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/cursor.h"

#define BATCH_A "5f0c6a1e-1c2b-4d3e-8f40-0123456789ab"
#define BATCH_B "5f0c6a1e-1c2b-4d3e-8f40-0123456789ac"

static void make_key(struct cursor_key *k, const char *secret)
{
	memset(k, 0, sizeof(*k));
	k->len = strlen(secret);
	memcpy(k->key, secret, k->len);
}

static void test_round_trip(void **state)
{
	static const int64_t ids[] = { 0, 1, 42, 0xabcdef, 1234567890123LL, INT64_MAX };
	struct cursor_key k;
	char text[CURSOR_LEN + 1];
	size_t i;

	(void)state;
	make_key(&k, "0123456789abcdef0123456789abcdef");
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int64_t got = -7;

		memset(text, 'X', sizeof(text));
		assert_int_equal(cursor_encode(&k, BATCH_A, "pending", ids[i], text), 0);
		assert_int_equal(strlen(text), CURSOR_LEN);
		assert_int_equal(strspn(text, "0123456789abcdef"), CURSOR_LEN);
		assert_int_equal(cursor_decode(&k, BATCH_A, "pending", text, &got), 0);
		assert_true(got == ids[i]);

		/* and with no status filter */
		got = -7;
		assert_int_equal(cursor_encode(&k, BATCH_A, NULL, ids[i], text), 0);
		assert_int_equal(cursor_decode(&k, BATCH_A, NULL, text, &got), 0);
		assert_true(got == ids[i]);
	}
}

static void test_id_visible_in_prefix(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1];

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 0x1f, text), 0);
	assert_memory_equal(text, "000000000000001f", 16);
}

static void test_deterministic(void **state)
{
	struct cursor_key k;
	char a[CURSOR_LEN + 1], b[CURSOR_LEN + 1];

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, "done", 99, a), 0);
	assert_int_equal(cursor_encode(&k, BATCH_A, "done", 99, b), 0);
	assert_string_equal(a, b);
}

static void test_negative_id_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1];

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, -1, text), -1);
}

static void test_other_batch_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1];
	int64_t got = -7;

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, "pending", 100, text), 0);
	assert_int_equal(cursor_decode(&k, BATCH_B, "pending", text, &got), -1);
	assert_true(got == -7);
}

static void test_other_status_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1];
	int64_t got = -7;

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, "pending", 100, text), 0);
	assert_int_equal(cursor_decode(&k, BATCH_A, "done", text, &got), -1);
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, text, &got), -1);
	assert_true(got == -7);

	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 100, text), 0);
	assert_int_equal(cursor_decode(&k, BATCH_A, "pending", text, &got), -1);
	assert_true(got == -7);
}

static void test_other_key_rejected(void **state)
{
	struct cursor_key k1, k2;
	char text[CURSOR_LEN + 1];
	int64_t got = -7;

	(void)state;
	make_key(&k1, "secret-one");
	make_key(&k2, "secret-two");
	assert_int_equal(cursor_encode(&k1, BATCH_A, NULL, 5, text), 0);
	assert_int_equal(cursor_decode(&k2, BATCH_A, NULL, text, &got), -1);
	assert_true(got == -7);
}

static char flip_hex(char c)
{
	return c == '0' ? '1' : '0';
}

static void test_tampered_digit_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1], t2[CURSOR_LEN + 1];
	int64_t got = -7;
	int i;

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, "pending", 1000, text), 0);
	/* every single position: the id part and the MAC part */
	for (i = 0; i < CURSOR_LEN; i++) {
		memcpy(t2, text, sizeof(t2));
		t2[i] = flip_hex(t2[i]);
		assert_int_equal(cursor_decode(&k, BATCH_A, "pending", t2, &got), -1);
	}
	assert_true(got == -7);

	/* the id of another entry with the original MAC */
	memcpy(t2, text, sizeof(t2));
	memcpy(t2, "00000000000003e9", 16); /* 1001 */
	assert_int_equal(cursor_decode(&k, BATCH_A, "pending", t2, &got), -1);
	assert_true(got == -7);
}

static void test_wrong_length_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1], t2[CURSOR_LEN + 2];
	int64_t got = -7;

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 77, text), 0);

	memcpy(t2, text, CURSOR_LEN - 1);
	t2[CURSOR_LEN - 1] = '\0';
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);

	memcpy(t2, text, CURSOR_LEN);
	t2[CURSOR_LEN] = '0';
	t2[CURSOR_LEN + 1] = '\0';
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);

	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, "", &got), -1);
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, NULL, &got), -1);
	assert_true(got == -7);
}

static void test_uppercase_hex_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1], t2[CURSOR_LEN + 1];
	int64_t got = -7;
	int i, changed = 0;

	(void)state;
	make_key(&k, "secret");
	/* id 0xabc: uppercase letters in the id part */
	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 0xabc, text), 0);
	memcpy(t2, text, sizeof(t2));
	for (i = 0; i < 16; i++)
		if (t2[i] >= 'a' && t2[i] <= 'f')
			t2[i] = (char)(t2[i] - 'a' + 'A');
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);

	/* uppercase in the MAC part */
	memcpy(t2, text, sizeof(t2));
	for (i = 16; i < CURSOR_LEN; i++)
		if (t2[i] >= 'a' && t2[i] <= 'f') {
			t2[i] = (char)(t2[i] - 'a' + 'A');
			changed = 1;
		}
	assert_true(changed); /* 32 hex digits without a letter: ~2^-22 */
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);
	assert_true(got == -7);
}

static void test_garbage_rejected(void **state)
{
	struct cursor_key k;
	char text[CURSOR_LEN + 1], t2[CURSOR_LEN + 1];
	int64_t got = -7;

	(void)state;
	make_key(&k, "secret");
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, "not a cursor", &got), -1);
	assert_int_equal(
		cursor_decode(&k, BATCH_A, NULL, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", &got),
		-1);
	assert_int_equal(
		cursor_decode(&k, BATCH_A, NULL, "000000000000000000000000000000000000000000000000", &got),
		-1);
	/* id above INT64_MAX */
	assert_int_equal(
		cursor_decode(&k, BATCH_A, NULL, "ffffffffffffffff00000000000000000000000000000000", &got),
		-1);

	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 12, text), 0);
	memcpy(t2, text, sizeof(t2));
	t2[3] = 'g';
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);
	memcpy(t2, text, sizeof(t2));
	t2[20] = ' ';
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);
	memcpy(t2, text, sizeof(t2));
	t2[0] = '-';
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, t2, &got), -1);
	assert_true(got == -7);
}

static void test_empty_key_fails(void **state)
{
	struct cursor_key k, good;
	char text[CURSOR_LEN + 1];
	int64_t got = -7;

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_equal(cursor_encode(&k, BATCH_A, NULL, 1, text), -1);

	make_key(&good, "secret");
	assert_int_equal(cursor_encode(&good, BATCH_A, NULL, 1, text), 0);
	assert_int_equal(cursor_decode(&k, BATCH_A, NULL, text, &got), -1);
	assert_true(got == -7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_id_visible_in_prefix),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_negative_id_rejected),
		cmocka_unit_test(test_other_batch_rejected),
		cmocka_unit_test(test_other_status_rejected),
		cmocka_unit_test(test_other_key_rejected),
		cmocka_unit_test(test_tampered_digit_rejected),
		cmocka_unit_test(test_wrong_length_rejected),
		cmocka_unit_test(test_uppercase_hex_rejected),
		cmocka_unit_test(test_garbage_rejected),
		cmocka_unit_test(test_empty_key_fails),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
