/*
 * retry.c - see retry.h.
 */
#include "pm/retry.h"

#include <signal.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/db.h"
#include "common/log.h"
#include "core/outbox.h"
#include "core/verify.h"
#include "http/idempotency.h"
#include "pm/child.h"

static volatile sig_atomic_t retry_quit;

/* The outbox's tick (outbox_set_tick()): verifications go on while a drain
 * waits on slow transfers. */
struct retry_tick {
	struct verify *vf;
	struct db *db;
};

static void retry_on_tick(void *arg)
{
	struct retry_tick *t = arg;

	(void)verify_step(t->vf, t->db);
}

/*
 * Drain due rows (at once after a notification or while a backlog lasts,
 * else every outbox_poll_ms), and verify sent rows (SPEC 11) turn by turn in
 * between, waiting on their transfers while any is under way and on the
 * database's notifications otherwise.
 */
static void retry_loop(const struct conf *cfg, struct db *db, struct outbox *ob, struct verify *vf)
{
	long long next_drain = 0;

	while (!retry_quit) {
		long long now = clock_monotonic_ms();
		int n = 0, busy, got, wait;

		log_reopen_if_asked();
		if (now >= next_drain) {
			n = outbox_drain(ob, db, RETRY_BATCH);
			/* a backlog, or rows pulled forward meanwhile: no pause */
			next_drain = n > 0 ? 0 : now + cfg->outbox_poll_ms;
			if (n > 0)
				verify_kick(vf); /* some may be sent now */
		}
		/* SPEC 8: expired Idempotency-Keys (idem_prune() runs at most
		 * once every IDEM_PRUNE_EVERY_MS by itself) */
		(void)idem_prune(db, 10);
		busy = verify_step(vf, db);
		if (n < 0 || busy < 0) {
			usleep((useconds_t)cfg->outbox_poll_ms * 1000);
			continue;
		}
		if (n > 0)
			continue;
		wait = (int)(next_drain - clock_monotonic_ms());
		if (wait < 0)
			wait = 0;
		if (busy > 0) {
			verify_wait(vf, wait < VERIFY_TURN_MS ? wait : VERIFY_TURN_MS);
			got = db_wait_notify(db, 0);
		} else {
			got = db_wait_notify(db, wait);
		}
		if (got > 0) {
			next_drain = 0;
			verify_kick(vf);
		} else if (got < 0) {
			usleep((useconds_t)cfg->outbox_poll_ms * 1000);
		}
	}
}

void retry_main(const struct conf *cfg)
{
	struct db *db = db_new(cfg->database);
	struct outbox *ob = outbox_new(cfg);
	struct verify *vf = verify_new(cfg);
	struct retry_tick tick = { vf, db };

	db_configure(db, cfg);
	child_signals(&retry_quit);
	if (db == NULL || ob == NULL || vf == NULL) {
		log_error("retry child: cannot initialise");
		exit(1);
	}
	outbox_set_tick(ob, retry_on_tick, &tick);
	db_listen(db, "callstop_outbox");
	log_info("retry child started (livekit %s, openai %s)", conf_livekit_enabled(cfg) ? "on" : "off",
		 conf_openai_enabled(cfg) ? "on" : "off");
	retry_loop(cfg, db, ob, vf);
	verify_release(vf, db);
	outbox_free(ob);
	db_free(db);
	exit(0);
}
