/*
 * livekit.c - see livekit.h.
 */
#include "core/providers/livekit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/json.h"

/* base64url without padding (RFC 4648 section 5, as JWS requires):
 * OpenSSL's base64, then the URL-safe alphabet. */
static int livekit_b64url(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	int n;
	char *p;

	if (outlen < need)
		return -1;
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	for (p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	return n;
}

static int livekit_b64url_json(const cJSON *obj, char *out, size_t outlen)
{
	char *s = json_print(obj);
	int n;

	if (s == NULL)
		return -1;
	n = livekit_b64url((const unsigned char *)s, strlen(s), out, outlen);
	free(s);
	return n;
}

int livekit_token(const char *api_key, const char *secret, time_t now, const char *room, char *out,
		  size_t outlen)
{
	cJSON *header = cJSON_CreateObject(), *claims = cJSON_CreateObject(), *video;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int n1, n2, n3, rc = -1;

	cJSON_AddStringToObject(header, "alg", "HS256");
	cJSON_AddStringToObject(header, "typ", "JWT");
	cJSON_AddStringToObject(claims, "iss", api_key);
	cJSON_AddNumberToObject(claims, "nbf", (double)(now - 5)); /* clock skew */
	cJSON_AddNumberToObject(claims, "exp", (double)(now + LIVEKIT_TOKEN_TTL));
	video = cJSON_AddObjectToObject(claims, "video");
	if (room == NULL) {
		cJSON_AddTrueToObject(video, "roomCreate");
	} else {
		cJSON_AddTrueToObject(video, "roomAdmin");
		cJSON_AddStringToObject(video, "room", room);
	}

	n1 = livekit_b64url_json(header, out, outlen);
	if (n1 < 0 || (size_t)n1 + 1 >= outlen)
		goto out;
	out[n1] = '.';
	n2 = livekit_b64url_json(claims, out + n1 + 1, outlen - (size_t)n1 - 1);
	if (n2 < 0)
		goto out;
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, (size_t)(n1 + 1 + n2),
		 mac, &mac_len) == NULL)
		goto out;
	if ((size_t)(n1 + 1 + n2 + 1) >= outlen)
		goto out;
	out[n1 + 1 + n2] = '.';
	n3 = livekit_b64url(mac, mac_len, out + n1 + n2 + 2, outlen - (size_t)(n1 + n2 + 2));
	if (n3 < 0)
		goto out;
	rc = 0;
out:
	cJSON_Delete(header);
	cJSON_Delete(claims);
	return rc;
}

int livekit_rpc(CURL *easy, const struct conf *c, const char *method, const char *room, const char *identity,
		struct curl_slist **headers, char **body)
{
	char token[1024], auth[1100], url[1024];
	const char *base = c->livekit_url, *scheme = "";
	int delete_room = strcmp(method, "DeleteRoom") == 0;
	size_t len;
	cJSON *b = cJSON_CreateObject();

	cJSON_AddStringToObject(b, "room", room);
	if (identity != NULL)
		cJSON_AddStringToObject(b, "identity", identity);
	*body = json_print(b);
	cJSON_Delete(b);
	if (*body == NULL || livekit_token(c->livekit_api_key, c->livekit_api_secret, time(NULL),
					   delete_room ? NULL : room, token, sizeof(token)) < 0)
		return -1;
	/* the ws(s):// URL of LiveKit clients is accepted, as LiveKit's own
	 * server SDKs do; a trailing slash would make the path "//twirp" */
	if (strncmp(base, "wss://", 6) == 0) {
		scheme = "https://";
		base += 6;
	} else if (strncmp(base, "ws://", 5) == 0) {
		scheme = "http://";
		base += 5;
	}
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	snprintf(url, sizeof(url), "%s%.*s/twirp/livekit.RoomService/%s", scheme, (int)len, base, method);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	*headers = curl_slist_append(NULL, "Content-Type: application/json");
	*headers = curl_slist_append(*headers, auth);
	if (*headers == NULL)
		return -1;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, *body);
	return 0;
}

/* DeleteRoom of room (the idempotency key is not needed: a second
 * DeleteRoom answers not_found, which is done too). */
static int livekit_prepare(CURL *easy, const struct conf *c, const char *room, const char *idempotency_key,
			   struct curl_slist **headers, char **body)
{
	(void)idempotency_key;
	return livekit_rpc(easy, c, "DeleteRoom", room, NULL, headers, body);
}

int livekit_not_found(long http_status, const char *response)
{
	cJSON *err;
	const char *code;
	int found;

	if (http_status != 404)
		return 0;
	/* Twirp error body: {"code": "not_found", "msg": "..."} */
	err = cJSON_Parse(response ? response : "");
	code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "code"));
	found = code != NULL && strcmp(code, "not_found") == 0;
	cJSON_Delete(err);
	return found;
}

/* 200 done; 404 with Twirp code "not_found" done (already gone); other 4xx
 * permanent; else retry. */
static enum provider_verdict livekit_verdict(long http_status, const char *response)
{
	if (http_status == 200)
		return PROVIDER_DONE;
	if (http_status == 404)
		return livekit_not_found(http_status, response) ? PROVIDER_DONE : PROVIDER_PERMANENT;
	return provider_verdict_by_status(http_status);
}

const struct provider livekit_provider = {
	.name = "livekit",
	.label = "LiveKit",
	.enabled = conf_livekit_enabled,
	.prepare = livekit_prepare,
	.verdict = livekit_verdict,
	.verifies = 1,
};
