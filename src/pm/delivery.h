/*
 * delivery.h - the delivery child: sends the webhooks of SPEC 9.
 *
 * One process supervised by the master beside the workers and the retry
 * child, respawned like them.  It claims due deliveries with FOR UPDATE SKIP
 * LOCKED (so that the delivery children of several hosts share one
 * database), sends them through core/webhook.c, and sleeps until a NOTIFY on
 * callstop_webhook or webhook.poll_ms: a lost notification only delays a
 * delivery by the timer, never loses it.
 */
#ifndef CALLSTOP_DELIVERY_H
#define CALLSTOP_DELIVERY_H

#include "common/conf.h"

/* Deliveries claimed per round. */
#define DELIVERY_BATCH 1000

/* Run the delivery child.  Never returns: exits 0 on TERM/QUIT, non-zero on
 * a start-up failure (the master backs off and respawns it). */
void delivery_main(const struct conf *cfg) __attribute__((noreturn));

#endif
