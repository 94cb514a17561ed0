/*
 * conf.h - callstop.conf(5): an INI file, read once at start and again on
 * SIGHUP (a file that fails to load on reload keeps the running config).
 *
 * Syntax: "[section]" headers, "key = value" lines, '#' or ';' comments at the
 * start of a line, surrounding whitespace trimmed, an optional pair of double
 * quotes around a value removed.  Unknown sections or keys are errors (a typo
 * must not silently fall back to a default).
 *
 * Keys (section [callstopd]; every key is documented in callstop.conf(5)):
 *   database        libpq conninfo string ("host=... dbname=...").  Required.
 *                   Passwords belong in ~/.pgpass or PGPASSFILE, not here.
 *   database_connect_timeout, database_keepalives_idle,
 *   database_keepalives_interval, database_keepalives_count,
 *   database_tcp_user_timeout_ms
 *                   libpq's connect_timeout (s, per host; default 2),
 *                   keepalives_idle (10 s), keepalives_interval (5 s),
 *                   keepalives_count (3) and tcp_user_timeout (10000 ms),
 *                   used unless the database conninfo sets them; 0 = libpq's
 *                   default.  The keepalive and TCP keys apply to TCP only.
 *   database_statement_timeout_ms
 *                   statement_timeout of every statement but the batch
 *                   cancel, ms (100..3600000, default 5000): PostgreSQL
 *                   rolls back, 503.  A worker waits 500 ms longer at
 *                   most, and gives up at once on a server that does not
 *                   answer a new connection within 1 s (common/db.h).
 *   database_batch_timeout_ms
 *                   statement_timeout of a cancel naming a batch, ms
 *                   (default 280000), capped below request_timeout.
 *   idempotency_ttl seconds an Idempotency-Key and its answer are kept
 *                   (1..2592000, default 86400; SPEC 8), then pruned.
 *   idempotency_wait
 *                   ms a repeat of a key still running waits for it before
 *                   409 (0..60000, default 1000; SPEC 8), capped at half
 *                   of database_statement_timeout_ms.
 *   key_cache_ms    how long a worker trusts a cached API-key lookup, ms
 *                   (1..1000, default 1000: a revoked key stops working
 *                   within 1 s, SPEC section 2).
 *   listen          "/path/to.sock" (unix) or "host:port" (TCP).
 *                   Default /run/callstop/callstopd.sock.
 *   listen_backlog  listen(2) backlog (default 511).
 *   listen_group    group name given to a unix socket (default: unchanged).
 *   listen_mode     octal mode of a unix socket (default 0660).
 *   log_file        path of the log file; empty = stderr (default empty).
 *   log_level       error | warn | info | debug (default info).
 *   log_syslog      yes | no (default no): log to syslog(3), facility
 *                   daemon, instead of stderr or log_file.
 *   max_body_bytes  largest request body accepted, bytes (default 65536).
 *   max_requests    requests a worker serves before it exits and is
 *                   replaced (leaks and fragmentation do not accumulate),
 *                   each worker's limit drawn within +-10% so that they do
 *                   not all recycle at once; 0 = unlimited (default 10000).
 *   max_resources   most ids in one POST /calls/cancel (default 100).
 *   pid_file        written by the master; empty = none (default empty).
 *   process_control_timeout
 *                   seconds the master waits for workers to stop after
 *                   SIGQUIT (graceful) or SIGTERM (fast) before escalating
 *                   to SIGTERM / SIGKILL, 1..3600 (default 10).
 *   request_timeout seconds a request may run; the master kills a worker
 *                   busy longer (logged with method, URI and request id)
 *                   and starts another; nginx answers 502.  0 = no limit,
 *                   max 3600 (default 300: a batch of millions of entries
 *                   is cancelled in one transaction that must be let finish).
 *   slow_request_ms a request that takes this long (ms) is counted as slow
 *                   in the status page, like php-fpm's
 *                   request_slowlog_timeout (1..3600000, default 1000).
 *   test_crash_on_start, test_hang_route
 *                   TEST ONLY: exist only in a build configured with
 *                   --enable-test-hooks (common/fault.h).
 *   user            started as root: the user to run as once the socket is
 *                   bound (its primary group and supplementary groups too);
 *                   empty = do not switch (a warning is logged when running
 *                   as root).  Ignored when not started as root (default
 *                   empty).
 *   workers         number of preforked workers, 1..256 (default 4).
 *
 * The socket keys (listen*), pid_file and user are read at start only: a
 * reload that changes them keeps the running values and logs a warning.
 */
#ifndef CALLSTOP_CONF_H
#define CALLSTOP_CONF_H

#include <stddef.h>
#include <sys/types.h>

#include "common/attr.h"

#define CONF_DEFAULT_PATH "/etc/callstop/callstop.conf"

/* The most workers (the scoreboard is sized for two generations of them). */
#define CONF_WORKERS_MAX 256

enum conf_log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

struct conf {
	char *path;     /* file this was loaded from (owned) */
	char *database; /* libpq conninfo (owned) */
	/* database_*: libpq's connection parameters of the same names (added to
	 * the conninfo unless it sets them; 0 = leave libpq's default) and the
	 * statement_timeout of each statement class (common/db.h) */
	int database_batch_timeout_ms;
	int database_connect_timeout; /* seconds, per host */
	int database_keepalives_count;
	int database_keepalives_idle;     /* seconds */
	int database_keepalives_interval; /* seconds */
	int database_statement_timeout_ms;
	int database_tcp_user_timeout_ms;
	int idempotency_ttl;  /* s a stored Idempotency-Key is kept (SPEC 8) */
	int idempotency_wait; /* ms a repeat waits for the first request of its key */
	int key_cache_ms;
	char *listen; /* unix path or host:port (owned) */
	int listen_backlog;
	char *listen_group; /* NULL = leave as is (owned) */
	mode_t listen_mode;
	char *log_file; /* NULL = stderr (owned) */
	enum conf_log_level log_level;
	int log_syslog; /* boolean */
	size_t max_body_bytes;
	int max_requests; /* 0 = unlimited */
	int max_resources;
	char *pid_file;              /* NULL = none (owned) */
	int process_control_timeout; /* seconds */
	int request_timeout;         /* seconds, 0 = none */
	int slow_request_ms;
	/* set only in a --enable-test-hooks build (common/fault.h) */
	int test_crash_on_start; /* boolean, TEST ONLY */
	char *test_hang_route;   /* NULL = none, TEST ONLY (owned) */
	char *user;              /* NULL = do not switch (owned) */
	int workers;

	/* [livekit] (SPEC 6): all three set, or none (not configured) */
	char *livekit_url;             /* "https://lk.example.com" (owned) */
	char *livekit_api_key;         /* the JWT's iss (owned) */
	char *livekit_api_secret_file; /* path; its content -> livekit_api_secret */
	/* [openai] (SPEC 6): both set, or none */
	char *openai_api;          /* "realtime" | "live" (SPEC 11; owned) */
	char *openai_base_url;     /* "https://api.openai.com" (owned) */
	char *openai_api_key_file; /* path; its content -> openai_api_key */
	/* [outbox] (SPEC 6) */
	int outbox_backoff_base_ms; /* first retry delay */
	int outbox_backoff_max_ms;  /* cap of the exponential backoff */
	int outbox_concurrency;     /* HTTP requests in flight per provider and process */
	int outbox_connect_timeout_ms;
	int outbox_max_age;      /* s: a row older than this is dead-lettered at its next failure */
	int outbox_max_attempts; /* then dead-lettered (state failed), whatever its age */
	int outbox_poll_ms;      /* retry child's timer besides LISTEN */
	int outbox_timeout_ms;   /* whole request */
	/* s after sent: a target still there is unknown (SPEC 11) */
	int outbox_verify_deadline;
	/* [webhook] (SPEC 9) */
	int webhook_backoff_base_ms; /* first retry delay */
	int webhook_backoff_max_ms;  /* cap of the exponential backoff */
	int webhook_concurrency;     /* deliveries in flight per delivery child */
	int webhook_connect_timeout_ms;
	int webhook_enabled;    /* boolean: run the delivery child */
	int webhook_max_age;    /* s: a delivery queued longer than this fails at its next failure */
	int webhook_poll_ms;    /* delivery child's timer besides LISTEN */
	int webhook_timeout_ms; /* whole request */

	/* Read from the *_file keys at load; never logged (owned, NULL if unset). */
	char *livekit_api_secret;
	char *openai_api_key;
};

/* 1 if [livekit] / [openai] is configured. */
int conf_livekit_enabled(const struct conf *c);
int conf_openai_enabled(const struct conf *c);

enum conf_type {
	CONF_INT,       /* int, decimal, min..max */
	CONF_SIZE,      /* size_t, decimal, min..max */
	CONF_MODE,      /* mode_t, octal, min..max */
	CONF_LOG_LEVEL, /* enum conf_log_level, by name */
	CONF_BOOL,      /* int 0/1: yes|no (also true|false, on|off, 1|0) */
	CONF_STR,       /* char *, must not be empty */
	CONF_STR_NULL,  /* char *, empty = NULL */
};

#define CONF_F_REQUIRED 0x1 /* no default: the file must set it */
#define CONF_F_RESTART 0x2  /* a reload cannot change it */

/*
 * One row of the key table.  Rows are sorted by section, then by name, so
 * that the man page check (every key documented) can walk them in order.
 */
struct conf_key {
	const char *section; /* "callstopd" */
	const char *name;    /* "workers" */
	enum conf_type type;
	size_t offset;      /* of the field in struct conf */
	const char *def;    /* default as it would be written in the file */
	long long min, max; /* numeric types only */
	unsigned flags;     /* CONF_F_* */
};

/* The field of key k in configuration c, as a pointer to type. */
#define CONF_FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->offset))
#define CONF_CFIELD(c, k, type) ((const type *)(const void *)((const char *)(c) + (k)->offset))

/* The key table (static storage); *n receives the number of rows. */
const struct conf_key *conf_keys(size_t *n);

/*
 * Load and validate the file at path into a new struct conf.
 * Returns NULL on failure after writing one human-readable message
 * ("callstop.conf:12: workers: expected an integer 1..256, got 'x'") into
 * err (errlen bytes).  The caller owns the result: free with conf_free().
 */
struct conf *conf_load(const char *path, char *err, size_t errlen) MUST_CHECK;

void conf_free(struct conf *c);

/* 1 if listen names a unix socket path (starts with '/' or '.'), else 0. */
int conf_listen_is_unix(const struct conf *c);

/*
 * Split a TCP listen value "host:port", "[v6addr]:port" or "*:port" into
 * host (brackets removed; "" for "*", meaning every address) and port
 * (decimal 1..65535).  Returns 0, or -1 if the value is malformed or a part
 * does not fit its buffer.
 */
int conf_listen_split(const char *listen, char *host, size_t hostlen, char *port, size_t portlen);

/*
 * For a reload: copy the running value of every CONF_F_RESTART key that
 * differs from old into neu, and list the names of those keys in changed
 * ("listen, pid_file"; "" if none; changedlen bytes, may be 0).
 * Returns the number of such keys, or -1 if out of memory (neu is then
 * unusable: conf_free() it).
 */
int conf_keep_restart_keys(struct conf *neu, const struct conf *old, char *changed,
			   size_t changedlen) MUST_CHECK;

#endif
