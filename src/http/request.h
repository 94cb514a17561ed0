/*
 * request.h - one FastCGI request as the handlers see it.
 *
 * The worker fills the request side from the FastCGI params and body; the
 * handler fills the response side (status, extra headers, a JSON body); the
 * worker writes it out and logs one access line.  Keeping FastCGI streams out
 * of the handlers makes them testable without a server.
 */
#ifndef CALLSTOP_REQUEST_H
#define CALLSTOP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define REQUEST_PATH_MAX 2048
#define REQUEST_HEADERS_MAX 512

struct request {
	/* request side (borrowed from the FastCGI request) */
	char **envp;            /* FastCGI params, NULL-terminated "NAME=value" */
	const char *method;     /* REQUEST_METHOD */
	const char *path;       /* DOCUMENT_URI: decoded, normalised by nginx */
	const char *query;      /* QUERY_STRING, "" if none */
	const char *request_id; /* REQUEST_ID from nginx's $request_id, or "-" */
	const char *body;       /* NULL if none */
	size_t body_len;        /* bytes */
	int64_t start_ms;       /* monotonic clock at accept */

	/* response side, owned by the request */
	int status;                        /* HTTP status; 0 = nothing set yet */
	char headers[REQUEST_HEADERS_MAX]; /* extra "Name: value\r\n" lines */
	char *body_out;                    /* malloc'ed response body, or NULL */
	const char *content_type;          /* static string; NULL = application/json */

	/* for the access log */
	const char *route;   /* route name (static), "-" if none matched */
	long long tenant_id; /* 0 until authenticated */
};

/* Fill the request side from envp; body/len as read by the worker. */
void request_init(struct request *r, char **envp, const char *body, size_t body_len, int64_t start_ms);

/* Free the response side. */
void request_free(struct request *r);

/* A FastCGI param ("HTTP_X_API_KEY", "CONTENT_TYPE"), or NULL. */
const char *request_param(const struct request *r, const char *name);

/*
 * Look up query parameter name in r->query and URL-decode its value into out
 * (outlen bytes).  Returns 1 if present, 0 if absent, -1 if present but
 * malformed (bad escape, NUL, not UTF-8, or longer than outlen - 1).
 */
int request_query(const struct request *r, const char *name, char *out, size_t outlen);

/*
 * A time in a query value, strictly: an RFC 3339 date-time (section 5.6:
 * "2026-11-20T10:00:00Z", "...T10:00:00.5+02:00"; T and Z in either case)
 * with an offset PostgreSQL accepts (at most 15:59 either way), or a bare
 * date (YYYY-MM-DD) meaning 00:00 UTC (SPEC 4.1).  Digits only where digits
 * go, a real calendar day, hours 00-23, minutes and seconds 00-59.  Writes
 * the value as PostgreSQL parses it for timestamptz into out (outlen bytes;
 * a date takes 21).  Returns 0, or -1 if s is none of these or does not fit.
 */
int request_time(const char *s, char *out, size_t outlen);

/* 1 if the request carries a body whose media type is application/json
 * (parameters such as charset are ignored, the type compared without regard
 * to case: RFC 9110 8.3.1), else 0. */
int request_content_type_is_json(const struct request *r);

/* Set the response: status and body (ownership of body passes to r; NULL =
 * empty).  Allocation failures become a bare 500. */
void request_reply(struct request *r, int status, cJSON *body);

/* Set a response that is not JSON: status, content_type (a static string,
 * "text/plain; version=0.0.4") and body (malloc'ed, ownership passes to r;
 * NULL = a bare 500). */
void request_reply_text(struct request *r, int status, const char *content_type, char *body);

/* Append a response header line. */
void request_add_header(struct request *r, const char *name, const char *value);

#endif
