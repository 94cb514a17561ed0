/*
 * json_fuzz.c - the request-body parser and validator (src/common/json.c):
 * json_valid(), json_parse(), json_duplicate_key() on any bytes.
 *
 * Invariants: json_parse() builds a tree exactly when json_valid() accepts
 * the text (cJSON never accepts what the grammar check refused, nor refuses
 * what it accepted); the tree nests at most JSON_MAX_DEPTH levels; its
 * strings are valid UTF-8 and hold no NUL (strlen() is their length); and
 * the tree printed back is JSON again.
 */
#include "config.h"

#include <string.h>

#include "common/json.h"
#include "fuzz.h"

/* Every string of the tree, keys too, as UTF-8 (no NUL can hide: a NUL
 * would end it, which the printed form then shows as a shorter string). */
static void json_fuzz_strings(const cJSON *item)
{
	const cJSON *child;

	if (item->string != NULL)
		FUZZ_CHECK(json_utf8_valid(item->string, strlen(item->string)));
	if (cJSON_IsString(item))
		FUZZ_CHECK(json_utf8_valid(item->valuestring, strlen(item->valuestring)));
	cJSON_ArrayForEach(child, item)
		json_fuzz_strings(child);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	int valid = json_valid(buf, size);
	cJSON *root = json_parse(buf, size), *again;
	char *out;

	FUZZ_CHECK((root != NULL) == (valid != 0));
	if (root == NULL)
		return 0;
	FUZZ_CHECK(json_depth(root) <= JSON_MAX_DEPTH);
	FUZZ_CHECK(json_duplicate_key(root) >= 0);
	json_fuzz_strings(root);
	out = json_print(root);
	if (out != NULL) {
		FUZZ_CHECK(json_valid(out, strlen(out)));
		again = json_parse(out, strlen(out));
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(json_duplicate_key(again) == json_duplicate_key(root));
		cJSON_Delete(again);
		free(out);
	}
	cJSON_Delete(root);
	return 0;
}
