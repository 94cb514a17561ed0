/*
 * conf.c - callstop.conf(5) reader.  One table describes every key; the
 * parser, the defaults, the reload rules and the man page check all read it,
 * so adding a key (or a [livekit] section) is adding a row.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <openssl/crypto.h>

#include "common/conf.h"

/* The key table (conf_keys.c), read once. */
static const struct conf_key *conf_table;
static size_t conf_nkeys;

static void conf_table_load(void)
{
	if (conf_table == NULL)
		conf_table = conf_keys(&conf_nkeys);
}

#define CONF_NKEYS conf_nkeys

static const char *const conf_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const struct {
	const char *name;
	int value;
} conf_bool_names[] = {
	{ "yes", 1 }, { "no", 0 },  { "true", 1 }, { "false", 0 },
	{ "on", 1 },  { "off", 0 }, { "1", 1 },    { "0", 0 },
};

static void conf_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *conf_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Strict: the whole string is the number; no sign unless decimal. */
static int conf_parse_ll(const char *s, int base, long long *out)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)s[0]) && !(base == 10 && s[0] == '-' && isdigit((unsigned char)s[1])))
		return -1;
	errno = 0;
	v = strtoll(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int conf_set_str(char **field, const char *val)
{
	char *copy = strdup(val);

	if (copy == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

/* Sets one key; on error writes "key: why" into msg. */
static int conf_set(struct conf *c, const struct conf_key *k, const char *val, char *msg, size_t msglen)
{
	long long v;
	size_t i;

	switch (k->type) {
	case CONF_INT:
		if (conf_parse_ll(val, 10, &v) < 0 || v < k->min || v > k->max)
			goto bad_int;
		*CONF_FIELD(c, k, int) = (int)v;
		return 0;
	case CONF_SIZE:
		if (conf_parse_ll(val, 10, &v) < 0 || v < k->min || v > k->max)
			goto bad_int;
		*CONF_FIELD(c, k, size_t) = (size_t)v;
		return 0;
	case CONF_MODE:
		if (conf_parse_ll(val, 8, &v) < 0 || v < k->min || v > k->max) {
			conf_err(msg, msglen, "%s: expected an octal mode %04llo..%04llo, got '%s'", k->name,
				 k->min, k->max, val);
			return -1;
		}
		*CONF_FIELD(c, k, mode_t) = (mode_t)v;
		return 0;
	case CONF_LOG_LEVEL:
		for (i = 0; i < sizeof(conf_level_names) / sizeof(conf_level_names[0]); i++) {
			if (strcmp(val, conf_level_names[i]) == 0) {
				*CONF_FIELD(c, k, enum conf_log_level) = (enum conf_log_level)i;
				return 0;
			}
		}
		conf_err(msg, msglen, "%s: expected error, warn, info or debug, got '%s'", k->name, val);
		return -1;
	case CONF_BOOL:
		for (i = 0; i < sizeof(conf_bool_names) / sizeof(conf_bool_names[0]); i++) {
			if (strcmp(val, conf_bool_names[i].name) == 0) {
				*CONF_FIELD(c, k, int) = conf_bool_names[i].value;
				return 0;
			}
		}
		conf_err(msg, msglen, "%s: expected yes or no, got '%s'", k->name, val);
		return -1;
	case CONF_STR:
		if (val[0] == '\0') {
			conf_err(msg, msglen, "%s: must not be empty", k->name);
			return -1;
		}
		goto set_str;
	case CONF_STR_NULL:
		if (val[0] == '\0') {
			free(*CONF_FIELD(c, k, char *));
			*CONF_FIELD(c, k, char *) = NULL;
			return 0;
		}
		goto set_str;
	}
	conf_err(msg, msglen, "%s: unhandled key type %d", k->name, (int)k->type);
	return -1;

set_str:
	if (conf_set_str(CONF_FIELD(c, k, char *), val) < 0) {
		conf_err(msg, msglen, "%s: out of memory", k->name);
		return -1;
	}
	return 0;

bad_int:
	conf_err(msg, msglen, "%s: expected an integer %lld..%lld, got '%s'", k->name, k->min, k->max, val);
	return -1;
}

static int conf_section_known(const char *section)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_table[i].section, section) == 0)
			return 1;
	return 0;
}

static const struct conf_key *conf_find(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_table[i].section, section) == 0 && strcmp(conf_table[i].name, name) == 0)
			return &conf_table[i];
	return NULL;
}

int conf_listen_split(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = listen, *p;
	size_t hlen, plen;
	long long v;

	colon = strrchr(listen, ':');
	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - listen);
	p = colon + 1;
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen) != NULL || memchr(h, '[', hlen) != NULL) {
		/* an IPv6 address without brackets: where the port starts is a guess */
		return -1;
	}
	if (hlen == 1 && h[0] == '*')
		hlen = 0;
	else if (hlen == 0)
		return -1;
	plen = strlen(p);
	if (conf_parse_ll(p, 10, &v) < 0 || v < 1 || v > 65535)
		return -1;
	if (hlen >= hostlen || plen >= portlen)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, p, plen + 1);
	return 0;
}

int conf_listen_is_unix(const struct conf *c)
{
	return c->listen != NULL && (c->listen[0] == '/' || c->listen[0] == '.');
}

/* Checks that need the whole file: required keys, and listen's syntax
 * (so that -t catches it, not the first start after a deploy). */
static int conf_check(const struct conf *c, const char *path, const int *lines, char *err, size_t errlen)
{
	char host[256], port[8];
	size_t i;
	int line;

	for (i = 0; i < CONF_NKEYS; i++) {
		if ((conf_table[i].flags & CONF_F_REQUIRED) && lines[i] == 0) {
			conf_err(err, errlen, "%s: %s: required in [%s], not set", path, conf_table[i].name,
				 conf_table[i].section);
			return -1;
		}
	}

	line = lines[conf_find("callstopd", "listen") - conf_table];
	if (conf_listen_is_unix(c)) {
		if (strlen(c->listen) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			conf_err(err, errlen, "%s:%d: listen: unix socket path longer than %zu bytes: '%s'",
				 path, line, sizeof(((struct sockaddr_un *)0)->sun_path) - 1, c->listen);
			return -1;
		}
	} else if (conf_listen_split(c->listen, host, sizeof(host), port, sizeof(port)) < 0) {
		conf_err(
			err, errlen,
			"%s:%d: listen: expected /path/to.sock, host:port or [ipv6]:port (port 1..65535), got '%s'",
			path, line, c->listen);
		return -1;
	}
	if (strcmp(c->openai_api, "realtime") != 0 && strcmp(c->openai_api, "live") != 0) {
		conf_err(err, errlen, "%s:%d: api: expected realtime or live, got '%s'", path,
			 lines[conf_find("openai", "api") - conf_table], c->openai_api);
		return -1;
	}
	return 0;
}

#define CONF_SECRET_MAX 4095 /* bytes: a bigger file is the wrong file, not a secret to cut short */

/*
 * Read a secret file: its content with trailing whitespace removed.  Returns
 * a malloc'ed string, or NULL with a message in err (the path, never the
 * content) if it is unreadable, empty, holds a NUL or is over CONF_SECRET_MAX.
 */
static char *conf_read_secret(const char *file, const char *key, const char *path, char *err, size_t errlen)
{
	char buf[CONF_SECRET_MAX + 2], *secret = NULL;
	size_t n;
	int bad;
	FILE *f = fopen(file, "re");

	if (f == NULL) {
		conf_err(err, errlen, "%s: %s: cannot read secret file %s: %s", path, key, file,
			 strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, CONF_SECRET_MAX + 1, f); /* one byte more tells a file too big */
	bad = ferror(f);
	fclose(f);
	if (!bad && n <= CONF_SECRET_MAX) {
		buf[n] = '\0';
		while (n > 0 && isspace((unsigned char)buf[n - 1]))
			buf[--n] = '\0';
		if (n > 0 && strlen(buf) == n)
			secret = strdup(buf);
	}
	if (bad)
		conf_err(err, errlen, "%s: %s: cannot read secret file %s", path, key, file);
	else if (n > CONF_SECRET_MAX)
		conf_err(err, errlen, "%s: %s: secret file %s is over %d bytes", path, key, file,
			 CONF_SECRET_MAX);
	else if (secret == NULL)
		conf_err(err, errlen, "%s: %s: secret file %s is empty or not text", path, key, file);
	OPENSSL_cleanse(buf, sizeof(buf));
	return secret;
}

/* [livekit] and [openai]: all of a provider's keys or none; secrets loaded. */
static int conf_providers(struct conf *c, const char *path, char *err, size_t errlen)
{
	int lk = (c->livekit_url != NULL) + (c->livekit_api_key != NULL) +
		 (c->livekit_api_secret_file != NULL);
	int oa = (c->openai_base_url != NULL) + (c->openai_api_key_file != NULL);

	if (lk != 0 && lk != 3) {
		conf_err(err, errlen, "%s: [livekit] needs url, api_key and api_secret_file together", path);
		return -1;
	}
	if (oa != 0 && oa != 2) {
		conf_err(err, errlen, "%s: [openai] needs base_url and api_key_file together", path);
		return -1;
	}
	if (lk == 3 && (c->livekit_api_secret = conf_read_secret(
				c->livekit_api_secret_file, "api_secret_file", path, err, errlen)) == NULL)
		return -1;
	if (oa == 2 && (c->openai_api_key = conf_read_secret(c->openai_api_key_file, "api_key_file", path,
							     err, errlen)) == NULL)
		return -1;
	return 0;
}

int conf_livekit_enabled(const struct conf *c)
{
	return c->livekit_api_secret != NULL;
}

int conf_openai_enabled(const struct conf *c)
{
	return c->openai_api_key != NULL;
}

/* A "[section]" line (s without its surrounding blanks) makes *section the
 * current one.  0, or -1 with err set. */
static int conf_section_line(const char *path, int lineno, char *s, char **section, char *err, size_t errlen)
{
	size_t slen = strlen(s);

	if (s[slen - 1] != ']') {
		conf_err(err, errlen, "%s:%d: expected '[section]', got '%s'", path, lineno, s);
		return -1;
	}
	s[slen - 1] = '\0';
	s = conf_trim(s + 1);
	if (!conf_section_known(s)) {
		conf_err(err, errlen, "%s:%d: unknown section [%s]", path, lineno, s);
		return -1;
	}
	free(*section);
	*section = strdup(s);
	if (*section == NULL) {
		conf_err(err, errlen, "%s: out of memory", path);
		return -1;
	}
	return 0;
}

/* A "key = value" line of section into c; lines[] remembers where each key
 * was set.  0, or -1 with err set. */
static int conf_key_line(struct conf *c, const char *path, int lineno, char *s, const char *section,
			 int *lines, char *err, size_t errlen)
{
	char msg[512], *eq = strchr(s, '='), *key, *val;
	const struct conf_key *k;
	size_t vlen;

	if (eq == NULL) {
		conf_err(err, errlen, "%s:%d: expected 'key = value' or '[section]', got '%s'", path, lineno,
			 s);
		return -1;
	}
	*eq = '\0';
	key = conf_trim(s);
	val = conf_trim(eq + 1);
	if (key[0] == '\0') {
		conf_err(err, errlen, "%s:%d: missing key before '='", path, lineno);
		return -1;
	}
	if (section == NULL) {
		conf_err(err, errlen, "%s:%d: %s: key outside any section (add [callstopd] above it)", path,
			 lineno, key);
		return -1;
	}
	k = conf_find(section, key);
	if (k == NULL) {
		conf_err(err, errlen, "%s:%d: unknown key '%s' in [%s]", path, lineno, key, section);
		return -1;
	}
	/* a key set twice is a merge accident more often than an override */
	if (lines[k - conf_table] != 0) {
		conf_err(err, errlen, "%s:%d: %s: already set on line %d", path, lineno, key,
			 lines[k - conf_table]);
		return -1;
	}
	vlen = strlen(val);
	if (val[0] == '"') {
		if (vlen < 2 || val[vlen - 1] != '"') {
			conf_err(err, errlen, "%s:%d: %s: unterminated quote", path, lineno, key);
			return -1;
		}
		val[vlen - 1] = '\0';
		val++;
	}
	if (conf_set(c, k, val, msg, sizeof(msg)) < 0) {
		conf_err(err, errlen, "%s:%d: %s", path, lineno, msg);
		return -1;
	}
	lines[k - conf_table] = lineno;
	return 0;
}

/* Every line of f into c.  0, or -1 with err set. */
static int conf_read(struct conf *c, const char *path, FILE *f, int *lines, char *err, size_t errlen)
{
	char *line = NULL, *s, *section = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;

	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		lineno++;
		s = line;
		/* editors on other systems add a BOM; it is not part of the key */
		if (lineno == 1 && (unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb &&
		    (unsigned char)s[2] == 0xbf)
			s += 3;
		s = conf_trim(s);
		if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
			continue;
		if (s[0] == '[')
			rc = conf_section_line(path, lineno, s, &section, err, errlen);
		else
			rc = conf_key_line(c, path, lineno, s, section, lines, err, errlen);
	}
	if (rc == 0 && ferror(f)) {
		conf_err(err, errlen, "%s: read error: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	free(section);
	return rc;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
	char msg[512];
	int *lines; /* per key: the line that set it, 0 = not set */
	struct conf *c;
	size_t i;
	FILE *f;
	int rc;

	conf_table_load();
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		conf_err(err, errlen, "%s: out of memory", path);
		free(c);
		return NULL;
	}
	for (i = 0; i < CONF_NKEYS; i++) {
		if (conf_table[i].def != NULL &&
		    conf_set(c, &conf_table[i], conf_table[i].def, msg, sizeof(msg)) < 0) {
			conf_err(err, errlen, "%s: built-in default: %s", path, msg);
			conf_free(c);
			return NULL;
		}
	}

	f = fopen(path, "re");
	if (f == NULL) {
		conf_err(err, errlen, "%s: %s", path, strerror(errno));
		conf_free(c);
		return NULL;
	}
	lines = calloc(CONF_NKEYS, sizeof(*lines));
	if (lines == NULL) {
		conf_err(err, errlen, "%s: out of memory", path);
		fclose(f);
		conf_free(c);
		return NULL;
	}
	rc = conf_read(c, path, f, lines, err, errlen);
	fclose(f);
	if (rc < 0 || conf_check(c, path, lines, err, errlen) < 0 ||
	    conf_providers(c, path, err, errlen) < 0) {
		free(lines);
		conf_free(c);
		return NULL;
	}
	free(lines);
	return c;
}

void conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < CONF_NKEYS; i++)
		if (conf_table[i].type == CONF_STR || conf_table[i].type == CONF_STR_NULL)
			free(*CONF_FIELD(c, &conf_table[i], char *));
	if (c->livekit_api_secret != NULL)
		OPENSSL_cleanse(c->livekit_api_secret, strlen(c->livekit_api_secret));
	if (c->openai_api_key != NULL)
		OPENSSL_cleanse(c->openai_api_key, strlen(c->openai_api_key));
	free(c->livekit_api_secret);
	free(c->openai_api_key);
	free(c->path);
	free(c);
}
