/*
 * registry.h - the providers this build knows (SPEC 6), for the outbox.
 *
 * The one place that names them: the outbox iterates over the table, and a
 * new provider is one module exporting its struct provider plus one line in
 * registry.c.
 */
#ifndef CALLSTOP_REGISTRY_H
#define CALLSTOP_REGISTRY_H

#include <stddef.h>

#include "common/conf.h"
#include "core/providers/provider.h"

/* Every provider, in a fixed order: provider_table[0 .. provider_count()). */
extern const struct provider *const provider_table[];
size_t provider_count(void);

/* The names of the providers cfg configures, as a PostgreSQL text[] literal
 * for the cancel core's p_providers (a provider not in it gets its outbox
 * rows written failed, "not configured": SPEC 6).  Malloc'ed (the caller
 * frees it), or NULL when out of memory. */
char *provider_enabled_array(const struct conf *cfg);

#endif
