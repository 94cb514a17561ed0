/*
 * request.c - see request.h.
 */
#include "http/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* n decimal digits of s as a number, or -1 if one of them is not a digit
 * (sscanf's %2d would take "+1", "-1" and " 1"). */
static int request_digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* The zone of an RFC 3339 time: Z, or +HH:MM / -HH:MM within PostgreSQL's
 * +-15:59 (src/backend/utils/adt/datetime.c, MAX_TZDISP_HOUR). */
static int request_time_zone(const char *p)
{
	int h, m;

	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
		return 0;
	if ((p[0] != '+' && p[0] != '-') || strlen(p) != 6 || p[3] != ':')
		return -1;
	h = request_digits(p + 1, 2);
	m = request_digits(p + 4, 2);
	return h >= 0 && h <= 15 && m >= 0 && m <= 59 ? 0 : -1;
}

int request_time(const char *s, char *out, size_t outlen)
{
	size_t len = strlen(s);
	struct tm tm = { 0 }, back;
	int y, mo, d;
	const char *p = s + 19;
	time_t t;

	if (len < 10 || s[4] != '-' || s[7] != '-' || (y = request_digits(s, 4)) < 1 ||
	    (mo = request_digits(s + 5, 2)) < 1 || mo > 12 || (d = request_digits(s + 8, 2)) < 1)
		return -1;
	if (len > 10) {
		/* RFC 3339 5.6: full-date "T" HH:MM:SS [.frac] (Z / +-HH:MM) */
		int h, mi, sec;

		if (len < 20 || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
			return -1;
		h = request_digits(s + 11, 2);
		mi = request_digits(s + 14, 2);
		sec = request_digits(s + 17, 2);
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
			return -1;
		if (*p == '.') {
			size_t digits = strspn(p + 1, "0123456789");

			if (digits == 0)
				return -1;
			p += 1 + digits;
		}
		if (request_time_zone(p) < 0)
			return -1;
	}
	/* a real calendar day: 2026-02-30 comes back from timegm() as March */
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	t = timegm(&tm);
	if (gmtime_r(&t, &back) == NULL || back.tm_mday != d || back.tm_mon != mo - 1)
		return -1;
	if ((len == 10 ? 20 : len) >= outlen)
		return -1;
	if (len == 10) {
		snprintf(out, outlen, "%.10sT00:00:00Z", s);
		return 0;
	}
	memcpy(out, s, len + 1);
	out[10] = 'T';
	if (out[len - 1] == 'z')
		out[len - 1] = 'Z';
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
