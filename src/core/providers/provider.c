/*
 * provider.c - see provider.h.
 */
#include "core/providers/provider.h"

#include <string.h>

#include "core/providers/livekit.h"
#include "core/providers/openai.h"

const struct provider *const provider_table[] = { &livekit_provider, &openai_provider };

size_t provider_count(void)
{
	return sizeof(provider_table) / sizeof(provider_table[0]);
}

const struct provider *provider_find(const char *name)
{
	size_t i;

	for (i = 0; i < provider_count(); i++)
		if (strcmp(provider_table[i]->name, name) == 0)
			return provider_table[i];
	return NULL;
}

enum provider_verdict provider_verdict_by_status(long http_status)
{
	if (http_status >= 200 && http_status < 300)
		return PROVIDER_DONE;
	if (http_status == 408 || http_status == 429 || http_status >= 500 || http_status == 0)
		return PROVIDER_RETRY;
	return PROVIDER_PERMANENT;
}
