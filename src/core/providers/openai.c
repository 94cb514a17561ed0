/*
 * openai.c - see openai.h.
 */
#include "core/providers/openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int openai_prepare(CURL *easy, const struct conf *c, const char *call_id, const char *idempotency_key,
			  struct curl_slist **headers, char **body)
{
	char url[1024], auth[1024], idem[512];
	char *escaped = curl_easy_escape(easy, call_id, 0);
	size_t len = strlen(c->openai_base_url);

	if (escaped == NULL)
		return -1;
	/* a trailing slash would make the path "//v1/...", and its 404 read
	 * as "already ended" */
	while (len > 0 && c->openai_base_url[len - 1] == '/')
		len--;
	/* SPEC 11: [openai] api = realtime (the Realtime API's SIP calls) or
	 * live (its Live API sessions); the same Idempotency-Key rules */
	snprintf(url, sizeof(url), "%.*s/v1/%s/%s/hangup", (int)len, c->openai_base_url,
		 c->openai_api != NULL && strcmp(c->openai_api, "live") == 0 ? "live/sessions"
									     : "realtime/calls",
		 escaped);
	curl_free(escaped);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->openai_api_key);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idempotency_key);
	*body = strdup("");
	*headers = curl_slist_append(NULL, auth);
	*headers = curl_slist_append(*headers, idem);
	*headers = curl_slist_append(*headers, "Content-Type: application/json");
	if (*body == NULL || *headers == NULL)
		return -1;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, *body);
	return 0;
}

/* 2xx done, 404 done (already ended), other 4xx permanent, else retry. */
static enum provider_verdict openai_verdict(long http_status, const char *response)
{
	(void)response;
	if ((http_status >= 200 && http_status < 300) || http_status == 404)
		return PROVIDER_DONE;
	return provider_verdict_by_status(http_status);
}

const struct provider openai_provider = {
	.name = "openai",
	.label = "OpenAI",
	.enabled = conf_openai_enabled,
	.prepare = openai_prepare,
	.verdict = openai_verdict,
};
