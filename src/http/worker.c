/*
 * worker.c - see worker.h.
 */
#include "config.h"

#include "http/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <openssl/rand.h>

#include "common/clock.h"
#include "http/api.h"
#include "common/db.h"
#include "common/fault.h"
#include "common/log.h"
#include "core/outbox.h"
#include "http/request.h"
#include "http/router.h"
#include "common/scoreboard.h"

static volatile sig_atomic_t worker_quit;

/* QUIT and USR1 are blocked except while the worker waits for a connection
 * (worker_wait): a handler that ran in the middle of a request would make a
 * read() or write() inside libfcgi fail with EINTR and lose the request. */
static sigset_t worker_deferred;

static void worker_on_quit(int sig)
{
	(void)sig;
	worker_quit = 1;
}

static void worker_on_usr1(int sig)
{
	(void)sig;
	log_reopen_later();
}

static void worker_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* TERM/INT: fast stop, the default action (php-fpm's meaning). */
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	/* HUP is the master's (reload); a HUP sent to the process group must
	 * not kill the workers. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* QUIT: finish the request in hand, then exit.  No SA_RESTART, so that
	 * the wait for a connection returns. */
	sa.sa_handler = worker_on_quit;
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = worker_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&worker_deferred);
	sigaddset(&worker_deferred, SIGQUIT);
	sigaddset(&worker_deferred, SIGUSR1);
	sigprocmask(SIG_SETMASK, &worker_deferred, NULL);
	/* a USR1 that comes while a request is in hand is taken before the
	 * request's next log line (its access line), not after the request */
	log_reopen_on_pending(SIGUSR1);
}

/*
 * Take the deferred signals that are pending, as their handlers would.
 * ppoll() that finds the socket ready returns at once and puts the old mask
 * back without delivering a signal that is pending (Linux delivers one only
 * when the wait itself is interrupted), so under steady traffic a QUIT sent
 * while a request was served would never run its handler: the worker would
 * never drain, and would be TERMed mid-request after process_control_timeout
 * (issue 10, defect 3).
 */
static void worker_take_pending(void)
{
	static const struct timespec now = { 0, 0 };
	int sig;

	while ((sig = sigtimedwait(&worker_deferred, NULL, &now)) > 0) {
		if (sig == SIGQUIT)
			worker_quit = 1;
		else if (sig == SIGUSR1)
			log_reopen_later();
	}
}

/*
 * Wait until the listening socket has a connection or a deferred signal
 * arrives (ppoll unblocks them for the wait only).  Returns 1 if a
 * connection may be waiting and no stop was asked for, 0 otherwise.
 */
static int worker_wait(int listen_fd)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN, .revents = 0 };
	sigset_t none;
	int rc;

	sigemptyset(&none);
	rc = ppoll(&pfd, 1, NULL, &none);
	if (rc < 0 && errno != EINTR) {
		log_error("worker: poll on the listening socket: %s", strerror(errno));
		usleep(100 * 1000);
	}
	worker_take_pending();
	/* before the connection is accepted: a reopen that was pending when
	 * ppoll() found the socket ready is not left for after the request */
	log_reopen_if_asked();
	return !worker_quit && rc > 0 && (pfd.revents & POLLIN);
}

/* This worker's max_requests, drawn within +-10% so that workers started
 * together do not all exit together; 0 = unlimited. */
static unsigned long worker_request_limit(const struct conf *cfg)
{
	unsigned long x = 0, jitter = (unsigned long)cfg->max_requests / 10;

	if (cfg->max_requests == 0)
		return 0;
	if (jitter == 0)
		return (unsigned long)cfg->max_requests;
	RAND_bytes((unsigned char *)&x, sizeof(x));
	return (unsigned long)cfg->max_requests - jitter + x % (2 * jitter + 1);
}

/*
 * Read the body into buf (cap bytes).  Returns its length, or cap + 1 when it
 * is longer than cap (the handler answers 413; libfcgi discards the rest).
 */
static size_t worker_read_body(FCGX_Request *fcgx, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		int n = FCGX_GetStr(buf + len, (int)(cap + 1 - len), fcgx->in);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > cap)
			break;
	}
	return len;
}

static void worker_respond(FCGX_Request *fcgx, const struct request *r)
{
	int status = r->status ? r->status : 500;

	FCGX_FPrintF(fcgx->out, "Status: %d\r\nContent-Type: %s\r\nCache-Control: no-store\r\n%s\r\n", status,
		     r->content_type != NULL ? r->content_type : "application/json", r->headers);
	if (r->body_out != NULL)
		FCGX_PutS(r->body_out, fcgx->out);
}

static const char *worker_uri(const struct request *r)
{
	const char *raw_uri = request_param(r, "REQUEST_URI");

	return raw_uri != NULL ? raw_uri : r->path;
}

/* One access line, the metrics of the request, and a warning if it was
 * slow (over slow_request_ms). */
static void worker_access_log(const struct conf *cfg, const struct request *r)
{
	char uri[512], method[32], rid[80];
	long long ms = (long long)(clock_monotonic_ms() - r->start_ms);

	log_info("req=%s tenant=%lld route=%s status=%d ms=%lld \"%s %s\"",
		 log_escape(rid, sizeof(rid), r->request_id), r->tenant_id, r->route, r->status, ms,
		 log_escape(method, sizeof(method), r->method), log_escape(uri, sizeof(uri), worker_uri(r)));
	scoreboard_count_request(r->route, r->status ? r->status : 500, ms);
	if (ms >= cfg->slow_request_ms) {
		scoreboard_count_slow();
		log_warn("slow request: req=%s route=%s took %lld ms (slow_request_ms %d)", rid, r->route, ms,
			 cfg->slow_request_ms);
	}
}

void worker_main(const struct conf *cfg, int listen_fd, int index)
{
	struct worker_ctx ctx = { .cfg = cfg, .listen_fd = listen_fd };
	unsigned long limit = worker_request_limit(cfg), served = 0, connects = 0;
	FCGX_Request fcgx;
	char *body;
	int flags;

	fault_worker_start(cfg, index);
	body = malloc(cfg->max_body_bytes + 1);
	ctx.db = db_new(cfg->database);
	db_configure(ctx.db, cfg);
	if (body == NULL || ctx.db == NULL || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fcgx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("worker %d: cannot initialise", index);
		exit(1);
	}
	/* After FCGX_Init(): libfcgi installs its own SIGTERM/SIGUSR1/SIGPIPE
	 * handlers where it finds SIG_DFL, and its SIGTERM handler leaves an
	 * idle worker spinning in accept().  Ours replace them. */
	worker_signals();
	if ((conf_livekit_enabled(cfg) || conf_openai_enabled(cfg)) &&
	    (ctx.outbox = outbox_new(cfg)) == NULL) {
		log_error("worker %d: cannot initialise the outbox sender", index);
		exit(1);
	}
	/* Connect now so the first request does not pay for it; if the database
	 * is down (logged), db_exec() connects later by itself. */
	if (db_connect(ctx.db) < 0) {
		/* logged by db_connect(), once per outage */
	}
	/* Idle workers all wake for a connection and one accept()s it; the
	 * others must get EAGAIN, not block in accept() with QUIT deferred. */
	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("worker %d: cannot make the listening socket non-blocking: %s", index,
			  strerror(errno));
		exit(1);
	}

	while (!worker_quit) {
		struct request r;
		size_t len;

		scoreboard_add_db_connects(db_connects(ctx.db) - connects);
		connects = db_connects(ctx.db);
		/* before every request, so that the master can terminate the
		 * backend of a request this worker dies in (a reconnection in the
		 * middle of a request is seen at the next one) */
		scoreboard_set_backend_pid(db_backend_pid(ctx.db));
		if (limit != 0 && served >= limit) {
			log_info("worker %d: served %lu requests (max_requests %d), exiting to be replaced",
				 index, served, cfg->max_requests);
			break;
		}
		if (!worker_wait(listen_fd))
			continue;
		if (FCGX_Accept_r(&fcgx) < 0) {
			/* another worker took the connection */
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == 0)
				continue;
			log_error("worker %d: accept failed: %s", index, strerror(errno));
			/* EMFILE and friends: back off instead of spinning */
			usleep(100 * 1000);
			continue;
		}
		request_init(&r, fcgx.envp, NULL, 0, clock_monotonic_ms());
		scoreboard_request_begin(r.start_ms, r.method, worker_uri(&r), r.request_id);
		len = worker_read_body(&fcgx, body, cfg->max_body_bytes);
		r.body = len ? body : NULL;
		r.body_len = len;
		router_dispatch(&r, &ctx);
		worker_respond(&fcgx, &r);
		/* before FCGX_Finish_r(), which frees the params r points into */
		worker_access_log(cfg, &r);
		request_free(&r);
		FCGX_Finish_r(&fcgx);
		scoreboard_request_end();
		served++;
	}
	FCGX_Free(&fcgx, 1);
	outbox_free(ctx.outbox);
	db_free(ctx.db);
	free(body);
	exit(0);
}
