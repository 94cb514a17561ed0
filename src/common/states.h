/*
 * states.h - the state names of SPEC section 5.
 */
#ifndef CALLSTOP_STATES_H
#define CALLSTOP_STATES_H

/* 1 for initiated, connecting, ringing, running. */
int states_call_is_active(const char *status);

/* 1 if s is one of the entry states (pending claimed running completed
 * failed cancelled). */
int states_is_entry_status(const char *s);

/*
 * The Heppu-style name of a call status (SPEC 4.1): running -> active,
 * ended -> completed, error/not_reachable -> failed, declined/rejected ->
 * busy, any other unchanged.  Returns a static string or status itself.
 */
const char *states_heppu_name(const char *status);

/* 1 if s is a status name of the Heppu-style API (a valid list filter). */
int states_is_heppu_status(const char *s);

/* The Trillet-style name of a batch status (SPEC 4.2): stopped -> cancelled. */
const char *states_trillet_name(const char *status);

#endif
