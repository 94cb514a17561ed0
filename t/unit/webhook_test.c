/*
 * webhook_test.c - unit tests for src/core/webhook_sign.c: the Standard
 * Webhooks 1.0 signature (SPEC 9) against the vector of the reference
 * libraries (the npm standardwebhooks package signs it the same), and the
 * shape of new secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/webhook.h"

#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330LL
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_reference_vector(void **state)
{
	char sig[WEBHOOK_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(
		webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, sizeof(sig)), 0);
	assert_string_equal(sig, VEC_SIG);
	/* the prefix is optional, as in the reference libraries */
	assert_int_equal(webhook_sign(&VEC_SECRET[strlen("whsec_")], VEC_ID, VEC_TS, VEC_BODY,
				      strlen(VEC_BODY), sig, sizeof(sig)),
			 0);
	assert_string_equal(sig, VEC_SIG);
}

static void test_changes_change_it(void **state)
{
	char sig[WEBHOOK_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(
		webhook_sign(VEC_SECRET, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY), sig, sizeof(sig)),
		0);
	assert_string_not_equal(sig, VEC_SIG);
	assert_int_equal(
		webhook_sign(VEC_SECRET, "msg_other", VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, sizeof(sig)),
		0);
	assert_string_not_equal(sig, VEC_SIG);
	assert_int_equal(webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, "{}", 2, sig, sizeof(sig)), 0);
	assert_string_not_equal(sig, VEC_SIG);
}

static void test_bad_secret(void **state)
{
	char sig[WEBHOOK_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(webhook_sign("whsec_", VEC_ID, VEC_TS, "{}", 2, sig, sizeof(sig)), -1);
	assert_int_equal(webhook_sign("whsec_abc", VEC_ID, VEC_TS, "{}", 2, sig, sizeof(sig)), -1);
	assert_int_equal(webhook_sign("whsec_!!!!", VEC_ID, VEC_TS, "{}", 2, sig, sizeof(sig)), -1);
	assert_int_equal(webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, "{}", 2, sig, 10), -1);
}

static void test_new_secret(void **state)
{
	char a[WEBHOOK_SECRET_MAX], b[WEBHOOK_SECRET_MAX], sig[WEBHOOK_SIGNATURE_MAX];

	(void)state;
	assert_int_equal(webhook_secret_new(a, sizeof(a)), 0);
	assert_int_equal(webhook_secret_new(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 6 + 44);
	assert_memory_equal(a, "whsec_", 6);
	assert_int_equal(a[49], '=');
	assert_string_not_equal(a, b);
	/* it signs */
	assert_int_equal(webhook_sign(a, VEC_ID, VEC_TS, "{}", 2, sig, sizeof(sig)), 0);
	assert_int_equal(webhook_secret_new(a, 10), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vector),
		cmocka_unit_test(test_changes_change_it),
		cmocka_unit_test(test_bad_secret),
		cmocka_unit_test(test_new_secret),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
