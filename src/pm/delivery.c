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
#include "pm/child.h"

static volatile sig_atomic_t delivery_quit;

void delivery_main(const struct conf *cfg)
{
	struct db *db = db_new(cfg->database);
	struct webhook_sender *ws = webhook_sender_new(cfg);

	db_configure(db, cfg);
	child_signals(&delivery_quit);
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
