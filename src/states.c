/*
 * states.c - see states.h.
 */
#include "states.h"

#include <stddef.h>
#include <string.h>

static int states_in(const char *s, const char *const *set)
{
	for (; s != NULL && *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

int states_call_is_active(const char *status)
{
	static const char *const active[] = { "initiated", "connecting", "ringing", "running", NULL };

	return states_in(status, active);
}

int states_is_entry_status(const char *s)
{
	static const char *const entry[] = { "pending", "claimed", "running", "completed", "failed", "cancelled", NULL };

	return states_in(s, entry);
}
