/*
 * child.h - what the master's supervised children other than workers (the
 * retry child, pm/retry.c; the webhook delivery child, pm/delivery.c) share:
 * their signal dispositions.
 *
 * HUP is ignored (the master starts a new child on reload); PIPE is ignored
 * (a provider or receiver that closes is an error of that transfer); TERM,
 * INT and QUIT set *quit, so that the round in hand finishes - a claimed
 * row that is not recorded would only wait for its claim to expire; USR1
 * asks for the log to be reopened (log_reopen_if_asked() in the loop).
 * Signals blocked by the master are unblocked.
 */
#ifndef CALLSTOP_CHILD_H
#define CALLSTOP_CHILD_H

#include <signal.h>

/* Install the dispositions; *quit becomes 1 on TERM, INT or QUIT.  quit
 * must be a static object of the child's loop. */
void child_signals(volatile sig_atomic_t *quit);

#endif
