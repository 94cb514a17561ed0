/*
 * json.c - see json.h.
 */
#include "common/json.h"

#include <stdlib.h>
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
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		s += n + 1;
	}
	return 1;
}

/*
 * The RFC 8259 grammar check that runs before cJSON: cJSON is lenient where
 * leniency changes meaning (an invalid \u escape becomes a NUL that cuts the
 * string short, raw control bytes are copied, any byte <= 0x20 is taken for
 * whitespace, 01 and -.5 are numbers), so what callstopd accepts is decided
 * here and cJSON only builds the tree of a text already known to be JSON.
 */
struct json_scan {
	const unsigned char *p, *end;
};

/* RFC 8259 section 2: ws = *( %x20 / %x09 / %x0A / %x0D ) */
static void json_scan_ws(struct json_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int json_scan_literal(struct json_scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

static size_t json_scan_digits(struct json_scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return (size_t)(s->p - start);
}

/* RFC 8259 section 6: [ minus ] int [ frac ] [ exp ], int = zero / digit1-9 *DIGIT */
static int json_scan_number(struct json_scan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (json_scan_digits(s) == 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (json_scan_digits(s) == 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (json_scan_digits(s) == 0)
			return -1;
	}
	return 0;
}

/* The 4 hex digits after \u as a code unit, or -1. */
static long json_scan_hex4(struct json_scan *s)
{
	long v = 0;
	int i;

	if (s->end - s->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		int c = *s->p++;

		if (c >= '0' && c <= '9')
			v = v << 4 | (c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = v << 4 | ((c | 0x20) - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/*
 * RFC 8259 section 7: no raw U+0000..U+001F, only the eight escapes and
 * \uXXXX with four hex digits.  Refused besides, because no C string (nor
 * PostgreSQL text) can hold what they decode to: \u0000, and a surrogate
 * that is not half of a pair (cJSON refuses those too, and they are not
 * UTF-8: RFC 3629 section 3).  Bytes >= 0x80 were checked by
 * json_utf8_valid().
 */
static int json_scan_string(struct json_scan *s)
{
	s->p++; /* the opening quote */
	while (s->p < s->end) {
		unsigned c = *s->p++;
		long u;

		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c != '\\')
			continue;
		if (s->p == s->end)
			return -1;
		c = *s->p++;
		if (strchr("\"\\/bfnrt", (int)c) != NULL && c != '\0')
			continue;
		if (c != 'u' || (u = json_scan_hex4(s)) <= 0 || (u >= 0xdc00 && u <= 0xdfff))
			return -1;
		if (u < 0xd800 || u > 0xdbff)
			continue;
		/* a high surrogate: a low one must follow */
		if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
			return -1;
		s->p += 2;
		u = json_scan_hex4(s);
		if (u < 0xdc00 || u > 0xdfff)
			return -1;
	}
	return -1;
}

/* One value at nesting level depth (the top-level value is level 1). */
static int json_scan_value(struct json_scan *s, int depth)
{
	unsigned char open, close;

	if (depth > JSON_MAX_DEPTH || s->p == s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return json_scan_string(s);
	case 't':
		return json_scan_literal(s, "true");
	case 'f':
		return json_scan_literal(s, "false");
	case 'n':
		return json_scan_literal(s, "null");
	case '[':
	case '{':
		break;
	default:
		return json_scan_number(s);
	}
	open = *s->p++;
	close = open == '[' ? ']' : '}';
	json_scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			if (s->p == s->end || *s->p != '"' || json_scan_string(s) < 0)
				return -1;
			json_scan_ws(s);
			if (s->p == s->end || *s->p++ != ':')
				return -1;
			json_scan_ws(s);
		}
		if (json_scan_value(s, depth + 1) < 0)
			return -1;
		json_scan_ws(s);
		if (s->p == s->end)
			return -1;
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
		json_scan_ws(s);
	}
}

int json_valid(const char *buf, size_t len)
{
	struct json_scan s;

	/* an empty body may come as buf NULL: NULL + 0 is undefined in C */
	if (buf == NULL || len == 0 || !json_utf8_valid(buf, len))
		return 0;
	s.p = (const unsigned char *)buf;
	s.end = s.p + len;
	json_scan_ws(&s);
	if (json_scan_value(&s, 1) < 0)
		return 0;
	json_scan_ws(&s);
	return s.p == s.end;
}

cJSON *json_parse(const char *buf, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	/* The grammar check also bounds the nesting, before cJSON recurses. */
	if (!json_valid(buf, len))
		return NULL;
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL)
		return NULL;
	/* cJSON ends where json_valid() did; a disagreement is refused. */
	while (end < buf + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != buf + len || json_depth(root) > JSON_MAX_DEPTH) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static int json_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int json_duplicate_key(const cJSON *item)
{
	const cJSON *child;
	const char **keys;
	size_t n = 0, i;
	int dup = 0;

	if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
		return 0;
	cJSON_ArrayForEach(child, item) {
		int d = json_duplicate_key(child);
		if (d != 0)
			return d;
		n++;
	}
	if (!cJSON_IsObject(item) || n < 2)
		return 0;
	/* sorted, so that 10 000 keys cost n log n comparisons, not n^2 / 2 */
	keys = malloc(n * sizeof(*keys));
	if (keys == NULL)
		return -1;
	i = 0;
	cJSON_ArrayForEach(child, item)
		keys[i++] = child->string;
	qsort(keys, n, sizeof(*keys), json_key_cmp);
	for (i = 1; i < n && !dup; i++)
		dup = strcmp(keys[i - 1], keys[i]) == 0;
	free(keys);
	return dup;
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
