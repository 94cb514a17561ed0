/*
 * floor.c - the benchmark's floor: the smallest libfcgi + libpq responder that
 * runs the same SQL as callstopd for GET /calls/status/{id} and for a
 * single-id POST /calls/cancel.  Not part of callstopd; built by t/bench/run.
 *
 *   floor SOCKET_PATH CONNINFO WORKERS [KEY_CACHE_MS]
 *
 * The same shape as callstopd: a master that opens one unix FastCGI socket
 * and forks WORKERS workers, each with one libpq connection and the
 * statements prepared, serving one request at a time with FCGX_Accept_r.
 *
 * Per request it does what callstopd does against PostgreSQL and nothing
 * else: the SHA-256 of X-API-Key, looked up by hash (cached per worker for
 * KEY_CACHE_MS, like callstopd's key_cache_ms, default 1000), then
 *   status: call_status(tenant, id) and call_targets(call uuid);
 *   cancel: cancel(tenant, {call}, {"<id>"}, false, "calls.cancel", key id,
 *           REQUEST_ID, "cancelled", {}) - callstopd's parameters with no
 *           provider configured.
 * The statements are copied from src/common/statements.c (keep them in step).  The answer
 * is a fixed small JSON object: no JSON library, no validation beyond what
 * keeps the SQL parameters well-formed, no logging.  That is the point.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* From src/common/statements.c: DB_KEY_LOOKUP, DB_CALL_STATUS, DB_CALL_TARGETS, DB_CANCEL. */
static const char *const floor_sql[][2] = {
	{ "key_lookup", "SELECT k.id, k.tenant_id, k.frontend_id, t.workspace_id, k.key_hash"
			" FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
			" WHERE k.key_hash = decode($1, 'hex') AND k.revoked_at IS NULL" },
	{ "call_status",
	  "SELECT c.id, c.status, b.job_id, c.agent_id, c.to_number, c.livekit_room, c.openai_call_id,"
	  " callstop_rfc3339(c.created_at), callstop_rfc3339(c.started_at), callstop_rfc3339(c.ended_at),"
	  " c.end_reason"
	  " FROM voice_call_logs c LEFT JOIN voice_call_batches b ON b.id = c.batch_id"
	  " WHERE c.tenant_id = $1::bigint AND c.id = callstop_uuid_or_null($2)" },
	{ "call_targets", "SELECT provider, target, state, attempts, last_error FROM termination_outbox"
			  " WHERE call_id = $1::uuid ORDER BY id" },
	{ "cancel",
	  "SELECT ord, resource_type, outcome, status, cancelled_count, pending_cancelled, active_count,"
	  " resource_uuid, job_id, tenant_id, livekit_room, openai_call_id, array_to_json(outbox_rows)"
	  " FROM callstop_cancel($1::bigint, $2::text[], $3::text[], $4::boolean, $5, $6::bigint, $7, $8,"
	  "  $9::text[])"
	  " ORDER BY ord" },
};
#define FLOOR_NSQL (sizeof(floor_sql) / sizeof(floor_sql[0]))

#define FLOOR_BODY_MAX 65536
#define FLOOR_ID_MAX 128

static volatile sig_atomic_t floor_quit;

static void floor_on_term(int sig)
{
	(void)sig;
	floor_quit = 1;
	FCGX_ShutdownPending();
}

static int64_t floor_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- per worker -------------------------------------------------------- */

static PGconn *conn;
static const char *conninfo;
static int key_cache_ms = 1000;

static struct {
	unsigned char hash[32];
	int64_t fetched_ms;
	int valid, known;
	char key_id[24], tenant_id[24], frontend_id[128];
} cache;

static int floor_connect(void)
{
	size_t i;

	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		return 0;
	if (conn != NULL)
		PQfinish(conn);
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "floor: connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		conn = NULL;
		return -1;
	}
	for (i = 0; i < FLOOR_NSQL; i++) {
		PGresult *res = PQprepare(conn, floor_sql[i][0], floor_sql[i][1], 0, NULL);
		int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		if (!ok)
			fprintf(stderr, "floor: prepare %s: %s", floor_sql[i][0], PQerrorMessage(conn));
		PQclear(res);
		if (!ok) {
			PQfinish(conn);
			conn = NULL;
			return -1;
		}
	}
	return 0;
}

static PGresult *floor_exec(const char *stmt, int n, const char *const *params)
{
	PGresult *res;

	if (floor_connect() < 0)
		return NULL;
	res = PQexecPrepared(conn, stmt, n, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "floor: %s: %s", stmt, PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

static void floor_reply(FCGX_Request *rq, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void floor_reply(FCGX_Request *rq, int status, const char *fmt, ...)
{
	char body[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	FCGX_FPrintF(rq->out, "Status: %d\r\nContent-Type: application/json\r\n\r\n%s", status, body);
}

/* 0 = authenticated (cache filled), 1 = answered (401/403/503). */
static int floor_auth(FCGX_Request *rq)
{
	const char *key = FCGX_GetParam("HTTP_X_API_KEY", rq->envp);
	const char *fid = FCGX_GetParam("HTTP_X_FRONTEND_ID", rq->envp);
	unsigned char hash[32];
	unsigned int len = 0;
	int64_t now = floor_now_ms();

	if (key == NULL || fid == NULL || EVP_Digest(key, strlen(key), hash, &len, EVP_sha256(), NULL) != 1 ||
	    len != 32) {
		floor_reply(rq, 401, "{\"error\":\"unauthorized\"}");
		return 1;
	}
	if (!cache.valid || now - cache.fetched_ms >= key_cache_ms ||
	    CRYPTO_memcmp(cache.hash, hash, 32) != 0) {
		char hex[65];
		const char *params[1] = { hex };
		PGresult *res;
		int i;

		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", hash[i]);
		res = floor_exec("key_lookup", 1, params);
		if (res == NULL) {
			floor_reply(rq, 503, "{\"error\":\"database_unavailable\"}");
			return 1;
		}
		memcpy(cache.hash, hash, 32);
		cache.fetched_ms = now;
		cache.valid = 1;
		cache.known = PQntuples(res) == 1;
		if (cache.known) {
			snprintf(cache.key_id, sizeof(cache.key_id), "%s", PQgetvalue(res, 0, 0));
			snprintf(cache.tenant_id, sizeof(cache.tenant_id), "%s", PQgetvalue(res, 0, 1));
			snprintf(cache.frontend_id, sizeof(cache.frontend_id), "%s", PQgetvalue(res, 0, 2));
		}
		PQclear(res);
	}
	if (!cache.known) {
		floor_reply(rq, 401, "{\"error\":\"unauthorized\"}");
		return 1;
	}
	if (strcmp(cache.frontend_id, fid) != 0) {
		floor_reply(rq, 403, "{\"error\":\"forbidden\"}");
		return 1;
	}
	return 0;
}

static void floor_status(FCGX_Request *rq, const char *id)
{
	const char *params[2] = { cache.tenant_id, id };
	PGresult *res, *targets;

	if (strlen(id) >= FLOOR_ID_MAX || strchr(id, '"') || strchr(id, '\\')) {
		floor_reply(rq, 404, "{\"error\":\"not_found\"}");
		return;
	}
	res = floor_exec("call_status", 2, params);
	if (res == NULL) {
		floor_reply(rq, 503, "{\"error\":\"database_unavailable\"}");
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		floor_reply(rq, 404, "{\"error\":\"not_found\"}");
		return;
	}
	params[0] = PQgetvalue(res, 0, 0);
	targets = floor_exec("call_targets", 1, params);
	if (targets == NULL) {
		PQclear(res);
		floor_reply(rq, 503, "{\"error\":\"database_unavailable\"}");
		return;
	}
	floor_reply(rq, 200,
		    "{\"resource_id\":\"%s\",\"resource_type\":\"call\",\"status\":\"%s\",\"targets\":%d}",
		    id, PQgetvalue(res, 0, 1), PQntuples(targets));
	PQclear(targets);
	PQclear(res);
}

/* The string value of "resource_id" in body, copied to out; -1 if absent or
 * not a plain string (escapes are refused, not decoded). */
static int floor_resource_id(const char *body, char *out, size_t cap)
{
	const char *p = strstr(body, "\"resource_id\"");
	size_t n;

	if (p == NULL)
		return -1;
	p += strlen("\"resource_id\"");
	while (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != '"')
		return -1;
	n = strcspn(p, "\"\\");
	if (p[n] != '"' || n == 0 || n >= cap)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static void floor_cancel(FCGX_Request *rq, char *body)
{
	const char *ctype = FCGX_GetParam("CONTENT_TYPE", rq->envp);
	const char *clen = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
	const char *rid = FCGX_GetParam("REQUEST_ID", rq->envp);
	char id[FLOOR_ID_MAX], refs[FLOOR_ID_MAX + 8];
	int want = clen ? atoi(clen) : 0, got = 0, batch, i;
	const char *params[9];
	PGresult *res;

	if (ctype == NULL || strncmp(ctype, "application/json", 16) != 0) {
		floor_reply(rq, 415, "{\"error\":\"unsupported_media_type\"}");
		return;
	}
	if (want < 0 || want > FLOOR_BODY_MAX) {
		floor_reply(rq, 413, "{\"error\":\"payload_too_large\"}");
		return;
	}
	while (got < want) {
		int n = FCGX_GetStr(body + got, want - got, rq->in);
		if (n <= 0)
			break;
		got += n;
	}
	body[got] = '\0';
	if (floor_resource_id(body, id, sizeof(id)) < 0) {
		floor_reply(rq, 400, "{\"error\":\"invalid_request\"}");
		return;
	}
	batch = strncmp(id, "batch-", 6) == 0;
	if (!batch)
		for (i = 0; id[i]; i++)
			id[i] = (char)tolower((unsigned char)id[i]);
	/* a text[] literal: floor_resource_id() let no '"' or '\' through */
	snprintf(refs, sizeof(refs), "{\"%s\"}", id);
	params[0] = cache.tenant_id;
	params[1] = batch ? "{batch}" : "{call}";
	params[2] = refs;
	params[3] = strstr(body, "\"force\":true") || strstr(body, "\"force\": true") ? "true" : "false";
	params[4] = "calls.cancel";
	params[5] = cache.key_id;
	params[6] = rid;
	params[7] = "cancelled";
	params[8] = "{}";
	res = floor_exec("cancel", 9, params);
	if (res == NULL || PQntuples(res) != 1) {
		if (res)
			PQclear(res);
		floor_reply(rq, 503, "{\"error\":\"database_unavailable\"}");
		return;
	}
	floor_reply(rq, 200, "{\"resource_id\":\"%s\",\"status\":\"%s\",\"cancelled_count\":%s}", id,
		    PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	PQclear(res);
}

static void floor_worker(int fd)
{
	FCGX_Request rq;
	char *body = malloc(FLOOR_BODY_MAX + 1);
	struct sigaction sa;

	if (body == NULL || FCGX_Init() != 0 || FCGX_InitRequest(&rq, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
		_exit(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = floor_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(0);
	floor_connect();

	while (!floor_quit) {
		const char *method, *uri;

		if (FCGX_Accept_r(&rq) < 0) {
			if (floor_quit)
				break;
			continue;
		}
		method = FCGX_GetParam("REQUEST_METHOD", rq.envp);
		uri = FCGX_GetParam("DOCUMENT_URI", rq.envp);
		if (method == NULL || uri == NULL)
			floor_reply(&rq, 400, "{\"error\":\"invalid_request\"}");
		else if (floor_auth(&rq) != 0)
			;
		else if (strcmp(method, "GET") == 0 && strncmp(uri, "/calls/status/", 14) == 0 && uri[14])
			floor_status(&rq, uri + 14);
		else if (strcmp(method, "POST") == 0 && strcmp(uri, "/calls/cancel") == 0)
			floor_cancel(&rq, body);
		else
			floor_reply(&rq, 404, "{\"error\":\"not_found\"}");
		FCGX_Finish_r(&rq);
	}
	if (conn)
		PQfinish(conn);
	_exit(0);
}

/* ---- master ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t set, old;
	pid_t *pids;
	int fd, workers, i, alive;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: %s SOCKET_PATH CONNINFO WORKERS [KEY_CACHE_MS]\n", argv[0]);
		return 2;
	}
	conninfo = argv[2];
	workers = atoi(argv[3]);
	if (argc == 5)
		key_cache_ms = atoi(argv[4]);
	if (workers < 1 || workers > 256 || key_cache_ms < 1) {
		fprintf(stderr, "floor: bad WORKERS or KEY_CACHE_MS\n");
		return 2;
	}
	unlink(argv[1]);
	umask(0117);
	fd = FCGX_OpenSocket(argv[1], 511); /* callstopd's default listen_backlog */
	if (fd < 0) {
		fprintf(stderr, "floor: cannot listen on %s\n", argv[1]);
		return 1;
	}
	pids = calloc((size_t)workers, sizeof(*pids));
	if (pids == NULL)
		return 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = floor_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (i = 0; i < workers; i++) {
		sigprocmask(SIG_BLOCK, &set, &old);
		pids[i] = fork();
		if (pids[i] == 0) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			floor_worker(fd);
		}
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (pids[i] < 0) {
			perror("floor: fork");
			pids[i] = 0;
		}
	}
	/* No respawn: a worker that dies is a failed benchmark, not something
	 * to hide.  Stop on a signal or when every worker is gone. */
	alive = workers;
	while (alive > 0) {
		pid_t p = wait(NULL);
		if (p > 0) {
			alive--;
			for (i = 0; i < workers; i++)
				if (pids[i] == p)
					pids[i] = 0;
			if (!floor_quit)
				fprintf(stderr, "floor: worker %ld exited\n", (long)p);
		} else if (errno == EINTR && floor_quit) {
			for (i = 0; i < workers; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
		} else if (errno == ECHILD) {
			break;
		}
	}
	unlink(argv[1]);
	return 0;
}
