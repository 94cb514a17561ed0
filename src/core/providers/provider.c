/*
 * provider.c - see provider.h.
 */
#include "core/providers/provider.h"

enum provider_verdict provider_verdict_by_status(long http_status)
{
	if (http_status >= 200 && http_status < 300)
		return PROVIDER_DONE;
	if (http_status == 408 || http_status == 429 || http_status >= 500 || http_status == 0)
		return PROVIDER_RETRY;
	return PROVIDER_PERMANENT;
}
