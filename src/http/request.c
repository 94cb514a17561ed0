/*
 * request.c - see request.h.
 */
#include "http/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "common/json.h"

/* 1 if every '%' in s[0..len) starts a "%XX" escape (RFC 3986 2.1):
 * libcurl passes malformed escapes through unchanged. */
static int request_escapes_valid(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdefABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		if (i + 2 >= len)
			return 0;
		if (strchr(hex, s[i + 1]) == NULL || strchr(hex, s[i + 2]) == NULL)
			return 0;
		i += 2;
	}
	return 1;
}

static const char *request_param_or(char **envp, const char *name, const char *dflt)
{
	const char *v = envp ? FCGX_GetParam(name, envp) : NULL;

	return v != NULL ? v : dflt;
}

void request_init(struct request *r, char **envp, const char *body, size_t body_len, int64_t start_ms)
{
	memset(r, 0, sizeof(*r));
	r->envp = envp;
	r->method = request_param_or(envp, "REQUEST_METHOD", "GET");
	r->path = request_param_or(envp, "DOCUMENT_URI", request_param_or(envp, "SCRIPT_NAME", "/"));
	r->query = request_param_or(envp, "QUERY_STRING", "");
	r->request_id = request_param_or(envp, "REQUEST_ID", "-");
	r->body = body;
	r->body_len = body_len;
	r->start_ms = start_ms;
	r->route = "-";
}

void request_free(struct request *r)
{
	free(r->body_out);
	r->body_out = NULL;
}

const char *request_param(const struct request *r, const char *name)
{
	return r->envp ? FCGX_GetParam(name, r->envp) : NULL;
}

int request_query(const struct request *r, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = r->query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			int dlen = 0;
			/* libcurl does the percent-decoding (RFC 3986 2.1); '+' is
			 * a space in form encoding (HTML 4.01 17.13.4.1). */
			char *copy = strndup(p + nlen + 1, len - nlen - 1);
			char *dec;
			char *q;

			if (copy == NULL)
				return -1;
			if (!request_escapes_valid(copy, strlen(copy))) {
				free(copy);
				return -1;
			}
			for (q = copy; *q; q++)
				if (*q == '+')
					*q = ' ';
			dec = curl_easy_unescape(NULL, copy, 0, &dlen);
			free(copy);
			if (dec == NULL)
				return -1;
			if ((size_t)dlen >= outlen || memchr(dec, '\0', (size_t)dlen) != NULL ||
			    !json_utf8_valid(dec, (size_t)dlen)) {
				curl_free(dec);
				return -1;
			}
			memcpy(out, dec, (size_t)dlen + 1);
			curl_free(dec);
			return 1;
		}
		if (len == nlen && strncmp(p, name, nlen) == 0) {
			if (outlen == 0)
				return -1;
			out[0] = '\0';
			return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

int request_content_type_is_json(const struct request *r)
{
	const char *ct = request_param(r, "CONTENT_TYPE");
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, json, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

void request_reply(struct request *r, int status, cJSON *body)
{
	free(r->body_out);
	r->body_out = NULL;
	r->content_type = NULL;
	r->status = status;
	if (body != NULL) {
		r->body_out = json_print(body);
		cJSON_Delete(body);
		if (r->body_out == NULL)
			r->status = 500;
	}
}

void request_reply_text(struct request *r, int status, const char *content_type, char *body)
{
	free(r->body_out);
	r->body_out = body;
	r->status = body != NULL ? status : 500;
	r->content_type = body != NULL ? content_type : NULL;
}

void request_add_header(struct request *r, const char *name, const char *value)
{
	size_t used = strlen(r->headers);

	snprintf(r->headers + used, sizeof(r->headers) - used, "%s: %s\r\n", name, value);
}
