/*
 * json.h - the JSON rules of SPEC section 3 on top of cJSON.
 */
#ifndef CALLSTOP_JSON_H
#define CALLSTOP_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/attr.h"

/* SPEC 3: a body nesting deeper than this (the top-level value is level 1)
 * is invalid_json. */
#define JSON_MAX_DEPTH 16

/*
 * 1 if len bytes of buf are one JSON text by the grammar of RFC 8259 (only
 * space, tab, CR and LF as whitespace; numbers as in its section 6; no raw
 * U+0000..U+001F in strings, only its escapes, \u with four hex digits),
 * in UTF-8 (section 8.1), nesting at most JSON_MAX_DEPTH levels, and with no
 * string that would decode to U+0000 or to half a surrogate pair.  Checks
 * only, allocates nothing; recursion is bounded by JSON_MAX_DEPTH.
 */
int json_valid(const char *buf, size_t len);

/*
 * Parse len bytes of buf (no NUL terminator needed) if json_valid() accepts
 * them.  Returns the tree (the caller frees it with cJSON_Delete) or NULL:
 * SPEC 3's invalid_json.  No string of the tree, key or value, holds a NUL
 * byte, so strlen() of one is its whole decoded length (issue 10: a string
 * cut short by an invalid escape once named another call).
 */
cJSON *json_parse(const char *buf, size_t len) MUST_CHECK;

/* 1 if an object of the tree, at any depth, has two members with the same
 * key (compared after unescaping: "a" and "\u0061" are the same): RFC 8259
 * section 4 leaves their meaning to each parser, so callstopd refuses them
 * (SPEC 3's invalid_request).  0 if none, -1 if out of memory. */
int json_duplicate_key(const cJSON *item);

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
