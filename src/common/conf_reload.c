/*
 * conf_reload.c - what a reload keeps of the running configuration: the keys
 * read at start only (CONF_F_RESTART: the socket, pid_file, user) are copied
 * from the old configuration into the new one (see conf_keep_restart_keys()
 * in conf.h).
 */
#include "common/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int conf_key_equal(const struct conf *a, const struct conf *b, const struct conf_key *k)
{
	const char *sa, *sb;

	switch (k->type) {
	case CONF_INT:
	case CONF_BOOL:
		return *CONF_CFIELD(a, k, int) == *CONF_CFIELD(b, k, int);
	case CONF_SIZE:
		return *CONF_CFIELD(a, k, size_t) == *CONF_CFIELD(b, k, size_t);
	case CONF_MODE:
		return *CONF_CFIELD(a, k, mode_t) == *CONF_CFIELD(b, k, mode_t);
	case CONF_LOG_LEVEL:
		return *CONF_CFIELD(a, k, enum conf_log_level) == *CONF_CFIELD(b, k, enum conf_log_level);
	case CONF_STR:
	case CONF_STR_NULL:
		sa = *CONF_CFIELD(a, k, char *);
		sb = *CONF_CFIELD(b, k, char *);
		if (sa == NULL || sb == NULL)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	}
	return 0;
}

static int conf_key_copy(struct conf *dst, const struct conf *src, const struct conf_key *k)
{
	const char *s;

	switch (k->type) {
	case CONF_INT:
	case CONF_BOOL:
		*CONF_FIELD(dst, k, int) = *CONF_CFIELD(src, k, int);
		return 0;
	case CONF_SIZE:
		*CONF_FIELD(dst, k, size_t) = *CONF_CFIELD(src, k, size_t);
		return 0;
	case CONF_MODE:
		*CONF_FIELD(dst, k, mode_t) = *CONF_CFIELD(src, k, mode_t);
		return 0;
	case CONF_LOG_LEVEL:
		*CONF_FIELD(dst, k, enum conf_log_level) = *CONF_CFIELD(src, k, enum conf_log_level);
		return 0;
	case CONF_STR:
	case CONF_STR_NULL:
		s = *CONF_CFIELD(src, k, char *);
		if (s == NULL) {
			free(*CONF_FIELD(dst, k, char *));
			*CONF_FIELD(dst, k, char *) = NULL;
			return 0;
		}
		{
			char *copy = strdup(s);

			if (copy == NULL)
				return -1;
			free(*CONF_FIELD(dst, k, char *));
			*CONF_FIELD(dst, k, char *) = copy;
			return 0;
		}
	}
	return -1;
}

int conf_keep_restart_keys(struct conf *neu, const struct conf *old, char *changed, size_t changedlen)
{
	size_t i, nkeys, used = 0;
	const struct conf_key *table = conf_keys(&nkeys);
	int n = 0, w;

	if (changedlen > 0)
		changed[0] = '\0';
	for (i = 0; i < nkeys; i++) {
		const struct conf_key *k = &table[i];

		if (!(k->flags & CONF_F_RESTART) || conf_key_equal(neu, old, k))
			continue;
		if (conf_key_copy(neu, old, k) < 0)
			return -1;
		if (used < changedlen) {
			w = snprintf(changed + used, changedlen - used, "%s%s", n > 0 ? ", " : "", k->name);
			used += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
	return n;
}
