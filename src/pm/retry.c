/*
 * retry.c - see retry.h.
 */
#include "pm/retry.h"

#include <signal.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/db.h"
#include "common/log.h"
#include "core/outbox.h"
#include "http/idempotency.h"

static volatile sig_atomic_t retry_quit;

static void retry_on_quit(int sig)
{
	(void)sig;
	retry_quit = 1;
}

static void retry_on_usr1(int sig)
{
	(void)sig;
	log_reopen_later();
}

static void retry_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* TERM and QUIT both finish the round in hand: a claimed row that is
	 * not recorded would only wait for its claim to expire. */
	sa.sa_handler = retry_on_quit;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = retry_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void retry_main(const struct conf *cfg)
{
	struct db *db = db_new(cfg->database);
	struct outbox *ob = outbox_new(cfg);

	db_configure(db, cfg);
	retry_signals();
	if (db == NULL || ob == NULL) {
		log_error("retry child: cannot initialise");
		exit(1);
	}
	db_listen(db, "callstop_outbox");
	log_info("retry child started (livekit %s, openai %s)", conf_livekit_enabled(cfg) ? "on" : "off",
		 conf_openai_enabled(cfg) ? "on" : "off");
	while (!retry_quit) {
		int n;

		log_reopen_if_asked();
		n = outbox_drain(ob, db, RETRY_BATCH);
		(void)idem_prune(db, 10); /* SPEC 8: expired Idempotency-Keys, once a second */
		if (n > 0)
			continue; /* a backlog, or rows pulled forward meanwhile: no sleep */
		if (n < 0 || db_wait_notify(db, cfg->outbox_poll_ms) < 0)
			usleep((useconds_t)cfg->outbox_poll_ms * 1000);
	}
	outbox_free(ob);
	db_free(db);
	exit(0);
}
