/*
 * webhook.c - callstopctl webhook add|list|remove|rotate-secret|test|
 * deliveries|replay: a tenant's webhook endpoints and what was sent to them
 * (SPEC 9).
 *
 * A secret is printed once, on stdout, and never logged; it is stored as
 * issued because it signs (sql/011_webhooks.sql).
 */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "common/db.h"
#include "core/webhook.h"
#include "ctl/ctl.h"

/* The event types of SPEC 9 an endpoint may ask for (--events). */
static const char *const ctl_webhook_types[] = {
	"call.cancelled",  "batch.cancelled",         "batch.paused",      "batch.resumed",
	"call.terminated", "call.termination_failed", "suppression.added", "webhook.test",
};

/* A delivery's states, for deliveries --state. */
static const char *const ctl_webhook_states[] = { "pending", "delivered", "failed", NULL };

#define CTL_WEBHOOK_URL_MAX 2048
/* A rotation's overlap: both secrets sign for this long unless --overlap. */
#define CTL_WEBHOOK_OVERLAP_S 86400

/* url must be an absolute https:// URL (http:// too with allow_http), as
 * libcurl parses it.  Returns 0, or -1 (reported). */
static int ctl_webhook_check_url(const char *cmd, const char *url, int allow_http)
{
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	size_t i;

	for (i = 0; url[i] != '\0'; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f) {
			ctl_error(cmd, "--url: no spaces or control characters allowed");
			goto out;
		}
	if (i > CTL_WEBHOOK_URL_MAX) {
		ctl_error(cmd, "--url: longer than %d bytes", CTL_WEBHOOK_URL_MAX);
		goto out;
	}
	if (h == NULL || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		ctl_error(cmd, "--url: not an absolute URL: '%s'", url);
		goto out;
	}
	if (strcasecmp(scheme, "https") != 0 && !(allow_http && strcasecmp(scheme, "http") == 0)) {
		ctl_error(cmd, "--url: expected https://%s, got '%s'",
			  allow_http ? " or http://" : " (or --allow-http)", url);
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return rc;
}

/* --events a,b,c as a text[] literal (db_text_array()) after checking each
 * name.  Returns a malloc'ed string, or NULL (reported). */
static char *ctl_webhook_events(const char *cmd, const char *list)
{
	const char *v[sizeof(ctl_webhook_types) / sizeof(ctl_webhook_types[0])];
	char *copy = strdup(list), *save = NULL, *tok, *out = NULL;
	size_t n = 0, i;

	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < sizeof(ctl_webhook_types) / sizeof(ctl_webhook_types[0]); i++)
			if (strcmp(tok, ctl_webhook_types[i]) == 0)
				break;
		if (i == sizeof(ctl_webhook_types) / sizeof(ctl_webhook_types[0])) {
			ctl_error(
				cmd,
				"--events: unknown event type '%s' (SPEC 9: call.cancelled, batch.cancelled, "
				"batch.paused, batch.resumed, call.terminated, call.termination_failed, "
				"suppression.added, webhook.test)",
				tok);
			goto out;
		}
		if (n < sizeof(v) / sizeof(v[0]))
			v[n++] = ctl_webhook_types[i];
	}
	if (n == 0) {
		ctl_error(cmd, "--events: expected TYPE[,TYPE...]");
		goto out;
	}
	out = db_text_array(v, n);
	if (out == NULL)
		ctl_error(cmd, "out of memory");
out:
	free(copy);
	return out;
}

/* Print a new secret once, on stdout, then forget it. */
static int ctl_webhook_print_secret(const char *cmd, char *secret)
{
	int rc = printf("%s\n", secret) < 0 || fflush(stdout) != 0 ? -1 : 0;

	OPENSSL_cleanse(secret, strlen(secret));
	if (rc < 0)
		ctl_error(cmd, "cannot print the secret");
	return rc;
}

static int ctl_webhook_add(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "url", required_argument, NULL, 'u' },
		{ "events", required_argument, NULL, 'e' },
		{ "allow-http", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "webhook add", *tenant = NULL, *url = NULL, *events = NULL;
	char secret[WEBHOOK_SECRET_MAX], *types = NULL;
	int c, allow_http = 0, rc = CTL_EXIT_ERROR;
	PGresult *res;
	PGconn *conn;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 't')
			tenant = optarg;
		else if (c == 'u')
			url = optarg;
		else if (c == 'e')
			events = optarg;
		else if (c == 'h')
			allow_http = 1;
		else {
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (tenant == NULL || url == NULL || optind != argc) {
		ctl_error(
			cmd,
			"expected --tenant NAME --url URL [--events TYPE,...] [--allow-http] (see %s --help)",
			CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_webhook_check_url(cmd, url, allow_http) < 0 ||
	    (events != NULL && (types = ctl_webhook_events(cmd, events)) == NULL))
		return CTL_EXIT_USAGE;
	if (webhook_secret_new(secret, sizeof(secret)) < 0) {
		ctl_error(cmd, "cannot generate a secret (RAND_bytes failed)");
		free(types);
		return CTL_EXIT_ERROR;
	}
	conn = ctl_connect(cmd, g);
	if (conn != NULL) {
		const char *params[4] = { tenant, url, types, secret };

		res = ctl_exec(cmd, conn, CTL_WEBHOOK_ADD, 4, params);
		if (res != NULL && PQntuples(res) == 0)
			ctl_error(cmd, "no tenant named '%s'", tenant);
		else if (res != NULL && ctl_webhook_print_secret(cmd, secret) == 0) {
			fprintf(stderr,
				"created webhook endpoint %s for tenant %s; its secret is shown only once, "
				"store it now\n",
				ctl_value(res, 0, "id"), tenant);
			rc = CTL_EXIT_OK;
		}
		PQclear(res);
		PQfinish(conn);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	free(types);
	return rc;
}

static int ctl_webhook_list(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_list("webhook list", CTL_WEBHOOK_LIST, g, argc, argv);
}

/* The one ID operand of cmd (after its options at argv[first..]).  Returns
 * 0, or -1 (reported). */
static int ctl_webhook_id(const char *cmd, int first, int argc, char **argv, const char **id)
{
	long long v;

	if (first < 0)
		return -1;
	if (argc - first != 1) {
		ctl_error(cmd, "expected one ID (see %s --help)", CTL_PROG);
		return -1;
	}
	*id = argv[first];
	return ctl_parse_int(cmd, "ID", *id, 1, INT64_MAX, &v);
}

static int ctl_webhook_remove(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "webhook remove", *id;
	PGresult *res;
	PGconn *conn;
	int rc = CTL_EXIT_ERROR;

	if (ctl_webhook_id(cmd, 1, argc, argv, &id) < 0)
		return CTL_EXIT_USAGE;
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	res = ctl_exec(cmd, conn, CTL_WEBHOOK_REMOVE, 1, (const char *const[]){ id });
	if (res != NULL && PQntuples(res) == 0)
		ctl_error(cmd, "no webhook endpoint %s (or it was already removed)", id);
	else if (res != NULL) {
		printf("removed webhook endpoint %s (%s pending deliveries failed)\n", id,
		       ctl_value(res, 0, "failed"));
		rc = CTL_EXIT_OK;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_webhook_rotate(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "overlap", required_argument, NULL, 'o' },
					      { NULL, 0, NULL, 0 } };
	const char *cmd = "webhook rotate-secret", *id;
	char secret[WEBHOOK_SECRET_MAX], overlap_s[24];
	long long overlap = CTL_WEBHOOK_OVERLAP_S;
	PGresult *res;
	PGconn *conn;
	int c, rc = CTL_EXIT_ERROR;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c != 'o') {
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
		if (ctl_parse_int(cmd, "--overlap", optarg, 0, 30LL * 86400, &overlap) < 0)
			return CTL_EXIT_USAGE;
	}
	if (ctl_webhook_id(cmd, optind, argc, argv, &id) < 0)
		return CTL_EXIT_USAGE;
	if (webhook_secret_new(secret, sizeof(secret)) < 0) {
		ctl_error(cmd, "cannot generate a secret (RAND_bytes failed)");
		return CTL_EXIT_ERROR;
	}
	snprintf(overlap_s, sizeof(overlap_s), "%lld", overlap);
	if ((conn = ctl_connect(cmd, g)) != NULL) {
		res = ctl_exec(cmd, conn, CTL_WEBHOOK_ROTATE, 3,
			       (const char *const[]){ id, secret, overlap_s });
		if (res != NULL && PQntuples(res) == 0)
			ctl_error(cmd, "no webhook endpoint %s", id);
		else if (res != NULL && ctl_webhook_print_secret(cmd, secret) == 0) {
			fprintf(stderr,
				"rotated the secret of webhook endpoint %s; the previous one also signs until %s; "
				"the new one is shown only once, store it now\n",
				id, ctl_value(res, 0, "overlap_until"));
			rc = CTL_EXIT_OK;
		}
		PQclear(res);
		PQfinish(conn);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

static int ctl_webhook_test(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "webhook test", *id;
	PGresult *res;
	PGconn *conn;
	int rc = CTL_EXIT_ERROR;

	if (ctl_webhook_id(cmd, 1, argc, argv, &id) < 0)
		return CTL_EXIT_USAGE;
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	res = ctl_exec(cmd, conn, CTL_WEBHOOK_TEST, 1, (const char *const[]){ id });
	if (res != NULL && (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)))
		ctl_error(cmd, "no enabled webhook endpoint %s", id);
	else if (res != NULL) {
		printf("queued webhook.test event %s for webhook endpoint %s\n", ctl_value(res, 0, "event"),
		       id);
		rc = CTL_EXIT_OK;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_webhook_deliveries(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "webhook deliveries", *endpoint = NULL, *state = NULL;
	char limit_s[24];
	long long limit = 100, v;
	PGresult *res;
	PGconn *conn;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'e') {
			endpoint = optarg;
			if (ctl_parse_int(cmd, "--endpoint", optarg, 1, INT64_MAX, &v) < 0)
				return CTL_EXIT_USAGE;
		} else if (c == 's') {
			state = optarg;
			if (ctl_parse_choice(cmd, "--state", state, ctl_webhook_states) < 0)
				return CTL_EXIT_USAGE;
		} else if (c == 'l') {
			if (ctl_parse_int(cmd, "--limit", optarg, 1, 1000000, &limit) < 0)
				return CTL_EXIT_USAGE;
		} else {
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (ctl_no_operands(cmd, optind, argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	snprintf(limit_s, sizeof(limit_s), "%lld", limit);
	res = ctl_exec(cmd, conn, CTL_WEBHOOK_DELIVERIES, 3,
		       (const char *const[]){ endpoint, state, limit_s });
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

/* The same event row again (same webhook-id, same body) to its enabled
 * endpoints, due now; then wake the delivery children. */
static int ctl_webhook_replay(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "webhook replay", *event;
	PGresult *res = NULL;
	PGconn *conn;
	int rc = CTL_EXIT_ERROR;

	if (argc != 2 || argv[1][0] == '\0') {
		ctl_error(cmd, "expected one EVENT_ID (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	event = argv[1];
	if ((conn = ctl_connect(cmd, g)) == NULL)
		return CTL_EXIT_ERROR;
	if (ctl_command(cmd, conn, CTL_BEGIN) < 0)
		goto out;
	res = ctl_exec(cmd, conn, CTL_WEBHOOK_REPLAY, 1, (const char *const[]){ event });
	if (res == NULL || ctl_command(cmd, conn, CTL_WEBHOOK_NOTIFY) < 0 ||
	    ctl_command(cmd, conn, CTL_COMMIT) < 0) {
		ctl_rollback(conn);
		goto out;
	}
	if (PQntuples(res) == 0) {
		ctl_error(cmd,
			  "no delivery of event %s to an enabled endpoint to replay (or one is in flight)",
			  event);
		goto out;
	}
	printf("re-queued %d delivery(ies) of event %s\n", PQntuples(res), event);
	rc = CTL_EXIT_OK;
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int ctl_cmd_webhook(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "add", ctl_webhook_add },       { "list", ctl_webhook_list },
		{ "remove", ctl_webhook_remove }, { "rotate-secret", ctl_webhook_rotate },
		{ "test", ctl_webhook_test },     { "deliveries", ctl_webhook_deliveries },
		{ "replay", ctl_webhook_replay },
	};

	return ctl_subcommand("webhook", "add, list, remove, rotate-secret, test, deliveries or replay", subs,
			      sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}
