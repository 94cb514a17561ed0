/*
 * cursor.h - opaque keyset cursors for the entries of a batch (SPEC 3.2).
 *
 * A cursor carries the id of the last entry of a page, bound to its batch and
 * status filter by an HMAC-SHA256 under the installation's secret
 * (callstop_secrets.cursor_hmac_key), so that a cursor callstopd did not
 * issue - or one issued for another batch or filter - is refused (400).
 * Text form: 16 hex digits of the entry id + 32 hex digits of the truncated
 * MAC (48 characters).
 */
#ifndef CALLSTOP_CURSOR_H
#define CALLSTOP_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#define CURSOR_LEN 48
#define CURSOR_KEY_MAX 64

struct cursor_key {
	unsigned char key[CURSOR_KEY_MAX];
	size_t len;
};

/* Write the cursor for (batch_id, status filter or NULL, last_id) into out
 * (CURSOR_LEN + 1 bytes).  Returns 0 or -1. */
int cursor_encode(const struct cursor_key *k, const char *batch_id, const char *status, int64_t last_id,
		  char out[CURSOR_LEN + 1]);

/* Check and decode text.  Returns 0 with *last_id set, or -1 if text is not a
 * cursor issued for this batch and filter. */
int cursor_decode(const struct cursor_key *k, const char *batch_id, const char *status, const char *text,
		  int64_t *last_id);

#endif
