/*
 * conf_keys.c - the table of every callstop.conf(5) key: section, name, type,
 * the struct conf field, default, bounds, flags.  The parser (conf.c), the
 * reload rules (conf_reload.c), the man page check (packaging/check-conf-keys)
 * and t/unit/conf_test.c all read it, so adding a key is adding a row here,
 * a field in struct conf and a paragraph in doc/callstop.conf.5.
 */
#include "config.h"

#include <stddef.h>

#include "common/conf.h"

#define KEY(sect, name, type, def, min, max, flags) \
	{ \
		sect, #name, type, offsetof(struct conf, name), def, min, max, flags \
	}
/* A key of section sect stored in field sect_name. */
#define SKEY(sect, name, type, def, min, max, flags) \
	{ \
#sect, #name, type, offsetof(struct conf, sect##_##name), def, min, max, flags \
	}

/* Sorted by section, then name (t/unit/conf_test.c checks it). */
/* clang-format off: one row a line, as packaging/check-conf-keys reads them */
static const struct conf_key conf_table[] = {
	KEY("callstopd", database, CONF_STR, NULL, 0, 0, CONF_F_REQUIRED),
	KEY("callstopd", database_batch_timeout_ms, CONF_INT, "280000", 100, 3600000, 0),
	KEY("callstopd", database_connect_timeout, CONF_INT, "2", 0, 3600, 0),
	KEY("callstopd", database_keepalives_count, CONF_INT, "3", 0, 1000, 0),
	KEY("callstopd", database_keepalives_idle, CONF_INT, "10", 0, 86400, 0),
	KEY("callstopd", database_keepalives_interval, CONF_INT, "5", 0, 86400, 0),
	KEY("callstopd", database_statement_timeout_ms, CONF_INT, "5000", 100, 3600000, 0),
	KEY("callstopd", database_tcp_user_timeout_ms, CONF_INT, "10000", 0, 3600000, 0),
	KEY("callstopd", idempotency_ttl, CONF_INT, "86400", 1, 2592000, 0),
	KEY("callstopd", idempotency_wait, CONF_INT, "1000", 0, 60000, 0),
	KEY("callstopd", key_cache_ms, CONF_INT, "1000", 1, 1000, 0),
	KEY("callstopd", listen, CONF_STR, "/run/callstop/callstopd.sock", 0, 0, CONF_F_RESTART),
	KEY("callstopd", listen_backlog, CONF_INT, "511", 1, 65535, CONF_F_RESTART),
	KEY("callstopd", listen_group, CONF_STR_NULL, "", 0, 0, CONF_F_RESTART),
	KEY("callstopd", listen_mode, CONF_MODE, "0660", 0, 0777, CONF_F_RESTART),
	KEY("callstopd", log_file, CONF_STR_NULL, "", 0, 0, 0),
	KEY("callstopd", log_level, CONF_LOG_LEVEL, "info", 0, 0, 0),
	KEY("callstopd", log_syslog, CONF_BOOL, "no", 0, 1, 0),
	KEY("callstopd", max_body_bytes, CONF_SIZE, "65536", 1, 64 * 1024 * 1024, 0),
	KEY("callstopd", max_requests, CONF_INT, "10000", 0, 100000000, 0),
	KEY("callstopd", max_resources, CONF_INT, "100", 1, 10000, 0),
	KEY("callstopd", pid_file, CONF_STR_NULL, "", 0, 0, CONF_F_RESTART),
	KEY("callstopd", process_control_timeout, CONF_INT, "10", 1, 3600, 0),
	KEY("callstopd", request_timeout, CONF_INT, "300", 0, 3600, 0),
	KEY("callstopd", slow_request_ms, CONF_INT, "1000", 1, 3600000, 0),
#ifdef CALLSTOP_TEST_HOOKS /* common/fault.h */
	KEY("callstopd", test_crash_on_start, CONF_BOOL, "no", 0, 1, 0),
	KEY("callstopd", test_hang_route, CONF_STR_NULL, "", 0, 0, 0),
#endif
	KEY("callstopd", user, CONF_STR_NULL, "", 0, 0, CONF_F_RESTART),
	KEY("callstopd", workers, CONF_INT, "4", 1, CONF_WORKERS_MAX, 0),
	SKEY(livekit, api_key, CONF_STR_NULL, "", 0, 0, 0),
	SKEY(livekit, api_secret_file, CONF_STR_NULL, "", 0, 0, 0),
	SKEY(livekit, url, CONF_STR_NULL, "", 0, 0, 0),
	SKEY(openai, api, CONF_STR, "realtime", 0, 0, 0),
	SKEY(openai, api_key_file, CONF_STR_NULL, "", 0, 0, 0),
	SKEY(openai, base_url, CONF_STR_NULL, "", 0, 0, 0),
	SKEY(outbox, backoff_base_ms, CONF_INT, "1000", 1, 3600000, 0),
	SKEY(outbox, backoff_max_ms, CONF_INT, "300000", 1, 86400000, 0),
	SKEY(outbox, concurrency, CONF_INT, "128", 1, 1024, 0),
	SKEY(outbox, connect_timeout_ms, CONF_INT, "1000", 1, 60000, 0),
	SKEY(outbox, max_age, CONF_INT, "3600", 1, 2592000, 0),
	SKEY(outbox, max_attempts, CONF_INT, "100", 1, 1000, 0),
	SKEY(outbox, poll_ms, CONF_INT, "1000", 10, 60000, 0),
	SKEY(outbox, timeout_ms, CONF_INT, "3000", 1, 120000, 0),
	SKEY(outbox, verify_deadline, CONF_INT, "10", 1, 3600, 0),
	SKEY(webhook, backoff_base_ms, CONF_INT, "1000", 1, 3600000, 0),
	SKEY(webhook, backoff_max_ms, CONF_INT, "3600000", 1, 86400000, 0),
	SKEY(webhook, concurrency, CONF_INT, "64", 1, 1024, 0),
	SKEY(webhook, connect_timeout_ms, CONF_INT, "2000", 1, 60000, 0),
	SKEY(webhook, enabled, CONF_BOOL, "yes", 0, 1, 0),
	SKEY(webhook, max_age, CONF_INT, "86400", 1, 2592000, 0),
	SKEY(webhook, poll_ms, CONF_INT, "1000", 10, 60000, 0),
	SKEY(webhook, timeout_ms, CONF_INT, "10000", 1, 120000, 0),
};
/* clang-format on */

const struct conf_key *conf_keys(size_t *n)
{
	if (n != NULL)
		*n = (sizeof(conf_table) / sizeof(conf_table[0]));
	return conf_table;
}
