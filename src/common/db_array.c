/*
 * db_array.c - text[] parameters for the statements of db.h (see
 * db_text_array() there).
 */
#include "common/db.h"

#include <stdlib.h>

char *db_text_array(const char *const *v, size_t n)
{
	size_t len = 3, i; /* braces and NUL */
	const char *p;
	char *out, *o;

	for (i = 0; i < n; i++) {
		len += 3; /* quotes and comma */
		for (p = v[i]; *p != '\0'; p++)
			len += *p == '"' || *p == '\\' ? 2 : 1;
	}
	out = malloc(len);
	if (out == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}
