/*
 * json.h - the JSON rules of SPEC section 3 on top of cJSON.
 */
#ifndef CALLSTOP_JSON_H
#define CALLSTOP_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* SPEC 3: a body nesting deeper than this (the top-level value is level 1)
 * is invalid_json. */
#define JSON_MAX_DEPTH 16

/*
 * Parse len bytes of buf as one JSON value with nothing but whitespace after
 * it, nesting at most JSON_MAX_DEPTH levels.  Returns the tree (the caller
 * frees it with cJSON_Delete) or NULL if it does not parse, nests too deep,
 * is not UTF-8 (RFC 8259 section 8.1), or holds a \u0000 escape (which C
 * strings, and PostgreSQL text, cannot carry).
 */
cJSON *json_parse(const char *buf, size_t len);

/* 1 if len bytes of buf are well-formed UTF-8 (RFC 3629). */
int json_utf8_valid(const char *buf, size_t len);

/* Depth of a tree, each value one level below its container: a scalar
 * and [] are 1, [1] is 2, [[1]] is 3. */
int json_depth(const cJSON *item);

/* cJSON_AddStringToObject that stores JSON null for a NULL value.  Returns
 * the new item or NULL on allocation failure. */
cJSON *json_add_string_or_null(cJSON *obj, const char *name, const char *value);

/* Serialize without whitespace.  Returns a malloc'ed string the caller frees,
 * or NULL on allocation failure. */
char *json_print(const cJSON *item);

#endif
