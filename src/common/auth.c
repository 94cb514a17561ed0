/*
 * auth.c - see auth.h.
 */
#include "common/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/db.h"
#include "common/log.h"

static const char auth_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int auth_token_well_formed(const char *s, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (s == NULL || strncmp(s, prefix, plen) != 0 || strlen(s) != plen + AUTH_TOKEN_BODY_LEN)
		return 0;
	return strspn(s + plen, auth_alphabet) == AUTH_TOKEN_BODY_LEN;
}

int auth_token_generate(const char *prefix, char out[AUTH_TOKEN_LEN + 1])
{
	/* 62 characters: accept bytes below 248 (= 4 * 62) so that every
	 * character is equally likely. */
	unsigned char buf[64];
	size_t n = 0, i;
	size_t plen = strlen(prefix);

	if (plen != AUTH_TOKEN_LEN - AUTH_TOKEN_BODY_LEN)
		return -1;
	memcpy(out, prefix, plen);
	while (n < AUTH_TOKEN_BODY_LEN) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return -1;
		for (i = 0; i < sizeof(buf) && n < AUTH_TOKEN_BODY_LEN; i++)
			if (buf[i] < 248)
				out[plen + n++] = auth_alphabet[buf[i] % 62];
	}
	out[plen + n] = '\0';
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

int auth_hash(const char *s, uint8_t out[AUTH_HASH_LEN])
{
	unsigned int len = 0;

	if (EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL) != 1 || len != AUTH_HASH_LEN)
		return -1;
	return 0;
}

/* Per-worker cache: a small direct-mapped table keyed by the key's hash.
 * Unknown keys are cached too, so a client retrying a bad key costs no
 * database round trip per request. */
#define AUTH_CACHE_SLOTS 64

struct auth_cache_slot {
	uint8_t hash[AUTH_HASH_LEN]; /* of the key or admin token: never equal */
	int64_t fetched_ms;
	int valid;
	int known;
	struct auth_identity id;
};

static struct auth_cache_slot auth_cache[AUTH_CACHE_SLOTS];

/* Look hash up with stmt (DB_KEY_LOOKUP or DB_ADMIN_LOOKUP: id, tenant_id,
 * frontend_id, workspace_id, hash). */
static enum auth_result auth_fetch(struct db *db, enum db_stmt stmt, const uint8_t hash[AUTH_HASH_LEN],
				   int *known, struct auth_identity *id)
{
	char hex[2 * AUTH_HASH_LEN + 1];
	const char *params[1] = { hex };
	PGresult *res;
	int i;

	for (i = 0; i < AUTH_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	res = db_exec(db, stmt, 1, params);
	if (res == NULL)
		return AUTH_DB_ERROR;
	*known = 0;
	if (PQntuples(res) == 1) {
		/* The index lookup already matched; compare again in constant
		 * time so no code path branches on a partial match. */
		size_t len = 0;
		unsigned char *stored =
			PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, KEY_LOOKUP_HASH), &len);
		if (stored != NULL && len == AUTH_HASH_LEN &&
		    CRYPTO_memcmp(stored, hash, AUTH_HASH_LEN) == 0) {
			*known = 1;
			id->key_id = strtoll(PQgetvalue(res, 0, KEY_LOOKUP_ID), NULL, 10);
			id->tenant_id = strtoll(PQgetvalue(res, 0, KEY_LOOKUP_TENANT_ID), NULL, 10);
			snprintf(id->frontend_id, sizeof(id->frontend_id), "%s",
				 PQgetvalue(res, 0, KEY_LOOKUP_FRONTEND_ID));
			snprintf(id->workspace_id, sizeof(id->workspace_id), "%s",
				 PQgetvalue(res, 0, KEY_LOOKUP_WORKSPACE_ID));
		}
		PQfreemem(stored);
	}
	PQclear(res);
	return AUTH_OK;
}

static enum auth_result auth_lookup(struct db *db, enum db_stmt stmt, const char *prefix, const char *token,
				    int key_cache_ms, int64_t now_ms, struct auth_identity *id)
{
	uint8_t hash[AUTH_HASH_LEN];
	struct auth_cache_slot *slot;
	enum auth_result r;
	int known = 0;

	if (!auth_token_well_formed(token, prefix) || auth_hash(token, hash) < 0)
		return AUTH_UNKNOWN;
	slot = &auth_cache[hash[0] % AUTH_CACHE_SLOTS];
	if (slot->valid && now_ms - slot->fetched_ms < key_cache_ms &&
	    CRYPTO_memcmp(slot->hash, hash, AUTH_HASH_LEN) == 0) {
		if (!slot->known)
			return AUTH_UNKNOWN;
		*id = slot->id;
		return AUTH_OK;
	}
	r = auth_fetch(db, stmt, hash, &known, id);
	if (r != AUTH_OK)
		return r;
	memcpy(slot->hash, hash, AUTH_HASH_LEN);
	slot->fetched_ms = now_ms;
	slot->valid = 1;
	slot->known = known;
	if (known)
		slot->id = *id;
	return known ? AUTH_OK : AUTH_UNKNOWN;
}

enum auth_result auth_lookup_key(struct db *db, const char *key, int key_cache_ms, int64_t now_ms,
				 struct auth_identity *id)
{
	return auth_lookup(db, DB_KEY_LOOKUP, AUTH_KEY_PREFIX, key, key_cache_ms, now_ms, id);
}

enum auth_result auth_lookup_admin(struct db *db, const char *token, int key_cache_ms, int64_t now_ms,
				   long long *token_id)
{
	struct auth_identity id;
	enum auth_result r =
		auth_lookup(db, DB_ADMIN_LOOKUP, AUTH_ADMIN_PREFIX, token, key_cache_ms, now_ms, &id);

	if (r == AUTH_OK)
		*token_id = id.key_id;
	return r;
}
