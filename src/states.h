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

#endif
