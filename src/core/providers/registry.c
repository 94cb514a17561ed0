/*
 * registry.c - see registry.h.
 */
#include "core/providers/registry.h"

#include "core/providers/livekit.h"
#include "core/providers/openai.h"

const struct provider *const provider_table[] = { &livekit_provider, &openai_provider };

size_t provider_count(void)
{
	return sizeof(provider_table) / sizeof(provider_table[0]);
}
