/*
 * ids.c - see ids.h.
 */
#include "common/ids.h"

#include <string.h>

int ids_is_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (s[i] == '\0')
			return 0;
		if (shape[i] == '-' ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL)
			return 0;
	}
	return s[i] == '\0';
}
