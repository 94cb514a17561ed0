/*
 * json.c - see json.h.
 */
#include "common/json.h"

#include <string.h>

int json_depth(const cJSON *item)
{
	int deepest = 0;
	const cJSON *child;

	if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
		return 1;
	cJSON_ArrayForEach(child, item) {
		int d = json_depth(child);
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

int json_utf8_valid(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf, *end = s + len;

	/* RFC 3629 section 4: shortest forms only, no surrogates, <= U+10FFFF */
	while (s < end) {
		unsigned c = *s;
		size_t n, i;
		unsigned cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		if ((size_t)(end - s) <= n)
			return 0;
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* 1 if a JSON text holds the escape \u0000 in a string: cJSON's C strings
 * would silently cut such a string short. */
static int json_has_nul_escape(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (buf[i] != '\\')
			continue;
		if (buf[i + 1] == 'u' && i + 5 < len && strncmp(buf + i + 2, "0000", 4) == 0)
			return 1;
		i++;   /* skip the escaped character, so "\\u0000" is text */
	}
	return 0;
}

cJSON *json_parse(const char *buf, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	if (len == 0 || !json_utf8_valid(buf, len) || json_has_nul_escape(buf, len))
		return NULL;
	/* cJSON stops at its own nesting limit (1000) on the way down, so the
	 * recursion in json_depth() below is bounded too. */
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL)
		return NULL;
	while (end < buf + len && strchr(" \t\r\n", *end) != NULL && *end != '\0')
		end++;
	if (end != buf + len || json_depth(root) > JSON_MAX_DEPTH) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

cJSON *json_add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value == NULL)
		return cJSON_AddNullToObject(obj, name);
	return cJSON_AddStringToObject(obj, name, value);
}

char *json_print(const cJSON *item)
{
	return cJSON_PrintUnformatted(item);
}
