/*
 * worker.c - see worker.h.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "request.h"
#include "router.h"

static volatile sig_atomic_t worker_quit;
static volatile sig_atomic_t worker_reopen;

static void worker_on_quit(int sig)
{
	(void)sig;
	worker_quit = 1;
	/* Wake FCGX_Accept_r: it fails with EINTR (FCGI_FAIL_ACCEPT_ON_INTR). */
	FCGX_ShutdownPending();
}

static void worker_on_usr1(int sig)
{
	(void)sig;
	worker_reopen = 1;
}

static void worker_signals(void)
{
	struct sigaction sa;
	sigset_t none;

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
	/* QUIT: finish the request in hand, then exit.  No SA_RESTART, so a
	 * blocked accept() returns. */
	sa.sa_handler = worker_on_quit;
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = worker_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int64_t worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

	FCGX_FPrintF(fcgx->out, "Status: %d\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n%s\r\n",
		     status, r->headers);
	if (r->body_out != NULL)
		FCGX_PutS(r->body_out, fcgx->out);
}

static void worker_access_log(const struct request *r)
{
	char uri[512], method[32], rid[80];
	const char *raw_uri = request_param(r, "REQUEST_URI");

	log_info("req=%s tenant=%lld route=%s status=%d ms=%lld \"%s %s\"",
		 log_escape(rid, sizeof(rid), r->request_id), r->tenant_id, r->route, r->status,
		 (long long)(worker_now_ms() - r->start_ms), log_escape(method, sizeof(method), r->method),
		 log_escape(uri, sizeof(uri), raw_uri ? raw_uri : r->path));
}

void worker_main(const struct conf *cfg, int listen_fd, int index)
{
	struct worker_ctx ctx = { .cfg = cfg };
	FCGX_Request fcgx;
	char *body;

	body = malloc(cfg->max_body_bytes + 1);
	ctx.db = db_new(cfg->database);
	if (body == NULL || ctx.db == NULL || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fcgx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("worker %d: cannot initialise", index);
		exit(1);
	}
	/* After FCGX_Init(): libfcgi installs its own SIGTERM/SIGUSR1/SIGPIPE
	 * handlers where it finds SIG_DFL, and its SIGTERM handler leaves an
	 * idle worker spinning in accept().  Ours replace them. */
	worker_signals();
	if ((conf_livekit_enabled(cfg) || conf_openai_enabled(cfg)) && (ctx.outbox = outbox_new(cfg)) == NULL) {
		log_error("worker %d: cannot initialise the outbox sender", index);
		exit(1);
	}
	/* Connect now so the first request does not pay for it; if the database
	 * is down, db_exec() connects later by itself. */
	db_connect(ctx.db);

	while (!worker_quit) {
		struct request r;
		size_t len;

		if (worker_reopen) {
			worker_reopen = 0;
			log_reopen();
		}
		if (FCGX_Accept_r(&fcgx) < 0) {
			if (worker_quit)
				break;
			if (errno == EINTR || errno == 0)
				continue;
			log_error("worker %d: accept failed: %s", index, strerror(errno));
			/* EMFILE and friends: back off instead of spinning */
			usleep(100 * 1000);
			continue;
		}
		len = worker_read_body(&fcgx, body, cfg->max_body_bytes);
		request_init(&r, fcgx.envp, len ? body : NULL, len, worker_now_ms());
		router_dispatch(&r, &ctx);
		worker_respond(&fcgx, &r);
		/* before FCGX_Finish_r(), which frees the params r points into */
		worker_access_log(&r);
		request_free(&r);
		FCGX_Finish_r(&fcgx);
	}
	FCGX_Free(&fcgx, 1);
	outbox_free(ctx.outbox);
	db_free(ctx.db);
	free(body);
	exit(0);
}
