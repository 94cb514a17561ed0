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

#include "core/providers/provider.h"

/* Every provider, in a fixed order: provider_table[0 .. provider_count()). */
extern const struct provider *const provider_table[];
size_t provider_count(void);

#endif
