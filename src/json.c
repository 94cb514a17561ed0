/*
 * json.c - see json.h.
 */
#include "json.h"

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

cJSON *json_parse(const char *buf, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	if (len == 0)
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
