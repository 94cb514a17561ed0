/*
 * delivery.c - see delivery.h.
 */
#include "pm/delivery.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/db.h"
#include "common/log.h"
#include "core/webhook.h"

static volatile sig_atomic_t delivery_quit;

static void delivery_on_quit(int sig)
{
	(void)sig;
	delivery_quit = 1;
}

static void delivery_on_usr1(int sig)
{
	(void)sig;
	log_reopen_later();
}

static void delivery_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* TERM and QUIT finish the round in hand: a claimed delivery that is
	 * not recorded would be sent again once its claim expires */
	sa.sa_handler = delivery_on_quit;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = delivery_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void delivery_main(const struct conf *cfg)
{
	struct db *db = db_new(cfg->database);
	struct webhook_sender *ws = webhook_sender_new(cfg);

	db_configure(db, cfg);
	delivery_signals();
	if (db == NULL || ws == NULL) {
		log_error("delivery child: cannot initialise");
		exit(1);
	}
	db_listen(db, "callstop_webhook");
	log_info("delivery child started (%d deliveries at once)", cfg->webhook_concurrency);
	while (!delivery_quit) {
		int n;

		log_reopen_if_asked();
		n = webhook_drain(ws, db, DELIVERY_BATCH);
		if (n > 0)
			continue; /* a backlog, or a resource's next event made due: no sleep */
		if (n < 0 || db_wait_notify(db, cfg->webhook_poll_ms) < 0)
			usleep((useconds_t)cfg->webhook_poll_ms * 1000);
	}
	webhook_sender_free(ws);
	db_free(db);
	exit(0);
}
