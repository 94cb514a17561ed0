/*
 * cursor.c - see cursor.h.
 */
#include "common/cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CURSOR_MAC_LEN 16

static int cursor_mac(const struct cursor_key *k, const char *batch_id, const char *status, int64_t last_id,
		      unsigned char mac[CURSOR_MAC_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int full_len = 0;
	char msg[256];
	int n;

	if (k->len == 0)
		return -1;
	n = snprintf(msg, sizeof(msg), "entries|%s|%s|%" PRId64, batch_id, status ? status : "", last_id);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	if (HMAC(EVP_sha256(), k->key, (int)k->len, (const unsigned char *)msg, (size_t)n, full, &full_len) ==
	    NULL)
		return -1;
	memcpy(mac, full, CURSOR_MAC_LEN);
	return 0;
}

int cursor_encode(const struct cursor_key *k, const char *batch_id, const char *status, int64_t last_id,
		  char out[CURSOR_LEN + 1])
{
	unsigned char mac[CURSOR_MAC_LEN];
	int i;

	if (last_id < 0 || cursor_mac(k, batch_id, status, last_id, mac) < 0)
		return -1;
	snprintf(out, 17, "%016" PRIx64, (uint64_t)last_id);
	for (i = 0; i < CURSOR_MAC_LEN; i++)
		snprintf(out + 16 + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int cursor_decode(const struct cursor_key *k, const char *batch_id, const char *status, const char *text,
		  int64_t *last_id)
{
	char expected[CURSOR_LEN + 1];
	uint64_t id = 0;
	int i;

	if (text == NULL || strlen(text) != CURSOR_LEN)
		return -1;
	for (i = 0; i < 16; i++) {
		char c = text[i];
		int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		id = id << 4 | (uint64_t)v;
	}
	if (id > INT64_MAX || cursor_encode(k, batch_id, status, (int64_t)id, expected) < 0)
		return -1;
	if (CRYPTO_memcmp(expected, text, CURSOR_LEN) != 0)
		return -1;
	*last_id = (int64_t)id;
	return 0;
}
