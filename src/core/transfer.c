/*
 * transfer.c - see transfer.h.
 */
#include "config.h"

#include "core/transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

size_t transfer_keep_start(char *ptr, size_t size, size_t nmemb, void *answer)
{
	struct transfer_answer *a = answer;
	size_t n = size * nmemb, room = sizeof(a->text) - 1 - a->len;

	memcpy(a->text + a->len, ptr, n < room ? n : room);
	a->len += n < room ? n : room;
	a->text[a->len] = '\0';
	return n;
}

void transfer_options(CURL *easy, void *owner, curl_write_callback write, void *data, long connect_ms,
		      long timeout_ms)
{
	curl_easy_setopt(easy, CURLOPT_PRIVATE, owner);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, data);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "callstop/" PACKAGE_VERSION);
}

int transfer_prepare(struct transfer *x, const struct conf *cfg)
{
	const struct provider *p = x->p;

	x->easy = curl_easy_init();
	if (x->easy == NULL) {
		snprintf(x->error, sizeof(x->error), "out of memory");
		return -1;
	}
	/* a reload may have removed the provider since the row was queued */
	if (!p->enabled(cfg)) {
		snprintf(x->error, sizeof(x->error), "%s not configured", p->label);
		return -1;
	}
	if (p->prepare(x->easy, cfg, x->target, x->idempotency_key, &x->headers, &x->body) < 0) {
		snprintf(x->error, sizeof(x->error), "cannot build the %s request", p->name);
		return -1;
	}
	transfer_options(x->easy, x, transfer_keep_start, &x->response, (long)cfg->outbox_connect_timeout_ms,
			 (long)cfg->outbox_timeout_ms);
	return 0;
}

void transfer_finish(struct transfer *x, CURLcode code)
{
	long status = 0;

	if (code != CURLE_OK) {
		x->verdict = PROVIDER_RETRY;
		snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(code));
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	x->verdict = x->p->verdict(status, x->response.text);
	if (x->verdict != PROVIDER_DONE || status >= 300)
		snprintf(x->error, sizeof(x->error), "HTTP %ld: %.200s", status, x->response.text);
}

long transfer_backoff_ms(int base_ms, int max_ms, int attempts)
{
	double d = base_ms;
	unsigned short r = 0;
	int i;

	for (i = 1; i < attempts && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return (long)(d * (0.5 + 0.5 * r / 65535.0));
}

void transfer_free(struct transfer *x)
{
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
}
