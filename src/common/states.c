/*
 * states.c - see states.h.
 */
#include "common/states.h"

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
	static const char *const entry[] = { "pending", "claimed",   "running", "completed",
					     "failed",  "cancelled", NULL };

	return states_in(s, entry);
}

const char *states_heppu_name(const char *status)
{
	static const struct {
		const char *ours;
		const char *heppu;
	} map[] = {
		{ "running", "active" },       { "ended", "completed" }, { "error", "failed" },
		{ "not_reachable", "failed" }, { "declined", "busy" },   { "rejected", "busy" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(status, map[i].ours) == 0)
			return map[i].heppu;
	return status;
}

int states_is_heppu_status(const char *s)
{
	static const char *const heppu[] = { "initiated", "connecting", "ringing", "active",    "completed",
					     "cancelled", "failed",     "busy",    "no_answer", NULL };

	return states_in(s, heppu);
}

const char *states_trillet_name(const char *status)
{
	return strcmp(status, "stopped") == 0 ? "cancelled" : status;
}
