/*
 * cursor_fuzz.c - the cursor decoder (src/common/cursor.c, SPEC 3.2) on any
 * text, for two filters.
 *
 * Invariants: a cursor that decodes is the one cursor_encode() writes for
 * its id (so no second spelling, case or padding, is accepted); and every
 * id taken from the input, encoded, decodes back to itself, for its filter
 * only.
 */
#include "config.h"

#include <string.h>

#include "common/cursor.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cursor_key key = { "fuzz-key-0123456789abcdef", 25 };
	static const char batch[] = "5f0c3b0e-9d0a-4c1e-8f7a-2b6d1e3c4a59";
	char *text = fuzz_cstring(data, size);
	char enc[CURSOR_LEN + 1];
	int64_t id = -1, back = -1;

	if (text != NULL) {
		if (cursor_decode(&key, batch, NULL, text, &id) == 0) {
			FUZZ_CHECK(id >= 0);
			FUZZ_CHECK(cursor_encode(&key, batch, NULL, id, enc) == 0);
			FUZZ_CHECK(strcmp(enc, text) == 0);
			FUZZ_CHECK(cursor_decode(&key, batch, "pending", text, &back) < 0);
		}
		(void)cursor_decode(&key, batch, "pending", text, &back);
		free(text);
	}
	if (size >= sizeof(id)) {
		memcpy(&id, data, sizeof(id));
		if (cursor_encode(&key, batch, "cancelled", id, enc) == 0) {
			FUZZ_CHECK(id >= 0);
			FUZZ_CHECK(strlen(enc) == CURSOR_LEN);
			FUZZ_CHECK(cursor_decode(&key, batch, "cancelled", enc, &back) == 0 && back == id);
			FUZZ_CHECK(cursor_decode(&key, batch, NULL, enc, &back) < 0);
		} else {
			FUZZ_CHECK(id < 0);
		}
	}
	return 0;
}
