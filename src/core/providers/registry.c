/*
 * registry.c - see registry.h.
 */
#include "core/providers/registry.h"

#include <stdlib.h>

#include "common/db.h"

#include "core/providers/livekit.h"
#include "core/providers/openai.h"

const struct provider *const provider_table[] = { &livekit_provider, &openai_provider };

size_t provider_count(void)
{
	return sizeof(provider_table) / sizeof(provider_table[0]);
}

char *provider_enabled_array(const struct conf *cfg)
{
	size_t i, n = 0, count = provider_count();
	const char **v = calloc(count ? count : 1, sizeof(*v));
	char *out;

	if (v == NULL)
		return NULL;
	for (i = 0; i < count; i++)
		if (provider_table[i]->enabled(cfg))
			v[n++] = provider_table[i]->name;
	out = db_text_array(v, n);
	free(v);
	return out;
}
