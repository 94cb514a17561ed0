/*
 * webhook_sign.c - the Standard Webhooks 1.0 signature and secrets (see
 * webhook.h).  https://www.standardwebhooks.com/ ("Signature scheme"):
 * the signed content is "{id}.{timestamp}.{body}", the key the base64
 * decoding of the secret after "whsec_".
 */
#include "core/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

int webhook_secret_new(char *buf, size_t len)
{
	unsigned char raw[WEBHOOK_SECRET_BYTES];
	size_t plen = strlen(WEBHOOK_SECRET_PREFIX);

	if (len < WEBHOOK_SECRET_MAX || RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(buf, WEBHOOK_SECRET_PREFIX, plen);
	EVP_EncodeBlock((unsigned char *)buf + plen, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* The key bytes of secret into key (room for len).  Returns their number,
 * or -1 if the secret is not base64. */
static int webhook_key(const char *secret, unsigned char *key, size_t len)
{
	size_t plen = strlen(WEBHOOK_SECRET_PREFIX), n;
	int k;

	if (strncmp(secret, WEBHOOK_SECRET_PREFIX, plen) == 0)
		secret += plen;
	n = strlen(secret);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > len)
		return -1;
	k = EVP_DecodeBlock(key, (const unsigned char *)secret, (int)n);
	if (k < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (secret[n - 1] == '=')
		k--;
	if (secret[n - 2] == '=')
		k--;
	return k;
}

int webhook_sign(const char *secret, const char *id, long long ts, const char *body, size_t body_len,
		 char *out, size_t outlen)
{
	unsigned char key[256], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int klen = webhook_key(secret, key, sizeof(key)), hlen;
	size_t idlen = strlen(id), len = idlen + 24 + body_len;
	char *msg;
	unsigned char *ok;

	if (klen < 0 || outlen < WEBHOOK_SIGNATURE_MAX || (msg = malloc(len)) == NULL)
		return -1;
	hlen = snprintf(msg, len, "%s.%lld.", id, ts);
	memcpy(msg + hlen, body, body_len);
	ok = HMAC(EVP_sha256(), key, klen, (const unsigned char *)msg, (size_t)hlen + body_len, mac, &maclen);
	free(msg);
	OPENSSL_cleanse(key, sizeof(key));
	if (ok == NULL)
		return -1;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
	return 0;
}
