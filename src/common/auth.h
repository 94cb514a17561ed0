/*
 * auth.h - API keys and admin tokens (SPEC section 2).
 *
 * A key is "csk_" + 40 characters of [A-Za-z0-9] from a CSPRNG; an admin
 * token is "csa_" + 40 of the same.  Only SHA-256(key) is stored
 * (api_keys.key_hash).  Workers cache lookups for key_cache_ms so that a
 * revoked key stops working within 1 s.
 */
#ifndef CALLSTOP_AUTH_H
#define CALLSTOP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_PREFIX "csk_"
#define AUTH_ADMIN_PREFIX "csa_"
#define AUTH_TOKEN_BODY_LEN 40
#define AUTH_TOKEN_LEN (4 + AUTH_TOKEN_BODY_LEN) /* without the NUL */
#define AUTH_HASH_LEN 32                         /* SHA-256 */

/* 1 if s is prefix + exactly 40 of [A-Za-z0-9], else 0. */
int auth_token_well_formed(const char *s, const char *prefix);

/*
 * Write a new token (prefix + 40 random characters, NUL-terminated) into out,
 * which must hold AUTH_TOKEN_LEN + 1 bytes.  Characters come from OpenSSL's
 * RAND_bytes with rejection sampling (no modulo bias).  Returns 0, or -1 if
 * the CSPRNG fails.
 */
int auth_token_generate(const char *prefix, char out[AUTH_TOKEN_LEN + 1]);

/* SHA-256 of s (its strlen bytes) into out.  Returns 0 or -1. */
int auth_hash(const char *s, uint8_t out[AUTH_HASH_LEN]);

/* What a valid key grants. */
struct auth_identity {
	long long key_id;
	long long tenant_id;
	char frontend_id[129];
	char workspace_id[129];
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_UNKNOWN,  /* malformed, unknown or revoked: 401 */
	AUTH_DB_ERROR, /* the lookup could not be made: 503 */
};

struct db;

/*
 * Look up admin token (as presented): like auth_lookup_key, against
 * admin_tokens; fills *token_id on AUTH_OK.
 */
enum auth_result auth_lookup_admin(struct db *db, const char *token, int key_cache_ms, int64_t now_ms,
				   long long *token_id);

/*
 * Look up key (as presented) for this worker: SHA-256, per-worker cache of
 * at most key_cache_ms, database lookup through db on a miss, hash compared in
 * constant time.  Fills *id on AUTH_OK.  now_ms: a monotonic clock in ms.
 */
enum auth_result auth_lookup_key(struct db *db, const char *key, int key_cache_ms, int64_t now_ms,
				 struct auth_identity *id);

#endif
