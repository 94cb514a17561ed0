/*
 * scoreboard.h - what every callstopd process is doing, in shared memory,
 * after php-fpm's fpm_scoreboard.
 *
 * The master maps it (anonymous, shared) before its first fork, so that every
 * worker inherits it.  It holds a fixed pool of entries, one per process: the
 * master assigns an entry before it forks a worker and frees it once it has
 * reaped it; in between only that worker writes it.  The master reads the
 * entries every second (request_timeout watchdog), the status page reads
 * them on demand; a sequence counter lets a reader see an entry whole.
 *
 * Global counters (accepted connections, slow requests, respawns, ...) and
 * the metrics arrays behind GET /callstop-metrics are updated with __atomic
 * builtins by whichever process counts.
 *
 * Without a scoreboard (callstopctl, unit tests, before create) every
 * function is a no-op and every reader sees zeros.
 */
#ifndef CALLSTOP_SCOREBOARD_H
#define CALLSTOP_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SCOREBOARD_METHOD_MAX 16
#define SCOREBOARD_URI_MAX 256 /* escaped (log_escape), truncated */
#define SCOREBOARD_RID_MAX 64
#define SCOREBOARD_ROUTES_MAX 24
#define SCOREBOARD_ROUTE_NAME_MAX 32

/* Latency histogram upper bounds, ms (Prometheus le="0.005" ... "10");
 * one more bucket counts the rest (+Inf). */
#define SCOREBOARD_BUCKETS 12
extern const int scoreboard_bucket_ms[SCOREBOARD_BUCKETS];

enum scoreboard_state {
	SCOREBOARD_FREE = 0, /* not assigned */
	SCOREBOARD_STARTING, /* assigned, forked, not initialised yet */
	SCOREBOARD_IDLE,     /* waiting for a connection */
	SCOREBOARD_BUSY,     /* serving a request */
};

enum scoreboard_kind {
	SCOREBOARD_WORKER = 0,
	SCOREBOARD_RETRY,    /* the outbox retry child */
	SCOREBOARD_DELIVERY, /* the webhook delivery child */
};

/* Cancels by resource type and outcome (SPEC 3.1). */
enum { SCOREBOARD_CANCEL_TYPES = 2, SCOREBOARD_CANCEL_OUTCOMES = 4 };
/* Outbox terminations by provider and result (SPEC 6). */
enum { SCOREBOARD_PROVIDERS = 2, SCOREBOARD_OUTBOX_RESULTS = 3 };
/* Webhook delivery attempts by outcome (SPEC 9). */
enum { SCOREBOARD_WEBHOOK_OUTCOMES = 4 };

/* Seconds to silence (SPEC 11), histogram upper bounds in ms (le="0.05" ...
 * "30"); one more bucket counts the rest (+Inf). */
#define SCOREBOARD_SILENCE_BUCKETS 10
extern const int scoreboard_silence_ms[SCOREBOARD_SILENCE_BUCKETS];

/* A consistent copy of one entry (scoreboard_read). */
struct scoreboard_proc {
	int index; /* entry number */
	enum scoreboard_kind kind;
	int slot;        /* worker slot of the master */
	unsigned gen;    /* configuration generation */
	pid_t pid;       /* 0 until the process has started */
	int backend_pid; /* its PostgreSQL backend's pid, 0 = not connected */
	enum scoreboard_state state;
	int64_t started_ms;       /* process start, CLOCK_MONOTONIC ms */
	int64_t request_start_ms; /* BUSY: request start, CLOCK_MONOTONIC ms */
	uint64_t requests;        /* requests served */
	char method[SCOREBOARD_METHOD_MAX];
	char uri[SCOREBOARD_URI_MAX];
	char request_id[SCOREBOARD_RID_MAX];
};

/* The global counters (scoreboard_totals). */
struct scoreboard_totals {
	int64_t start_time;        /* master start, seconds since the epoch */
	unsigned gen;              /* current configuration generation */
	uint64_t accepted;         /* connections accepted by workers */
	uint64_t max_active;       /* most workers busy at once */
	uint64_t slow_requests;    /* over slow_request_ms */
	uint64_t respawns;         /* workers started to replace one that died */
	uint64_t db_connects;      /* database (re)connections of workers */
	uint64_t max_listen_queue; /* deepest listen queue the master has seen */
	int active;                /* workers BUSY now */
	int idle;                  /* workers IDLE now */
	int total;                 /* worker entries in use */
};

/* ---- master ---- */

/*
 * Map a scoreboard of nentries entries and register the route names of the
 * metrics (copied; at most SCOREBOARD_ROUTES_MAX, each shorter than
 * SCOREBOARD_ROUTE_NAME_MAX).  Returns 0, or -1 with errno.
 */
int scoreboard_create(int nentries, const char *const *routes, size_t nroutes);

/* Assign a free entry to a process about to be forked.  Returns its index,
 * or -1 if the pool is exhausted. */
int scoreboard_assign(enum scoreboard_kind kind, int slot, unsigned gen);

/* Free entry index (its process has been reaped).  Returns 1 if that
 * process was BUSY when it died, else 0. */
int scoreboard_release(int index);

/* Set the current generation (status page). */
void scoreboard_set_gen(unsigned gen);

/* Count one respawn / one slow request / the listen queue seen. */
void scoreboard_count_respawn(void);
void scoreboard_count_slow(void);
void scoreboard_note_listen_queue(unsigned queue);

/* ---- the process an entry belongs to ---- */

/* In the child, right after fork: this process writes entry index
 * (-1: none). */
void scoreboard_attach(int index);

/* The process has started: pid and start time written, state IDLE. */
void scoreboard_started(void);

/*
 * A request was accepted: state BUSY with its start (CLOCK_MONOTONIC ms),
 * method, URI (escaped and truncated here) and request id; counts the
 * accepted connection and the most workers busy at once.
 */
void scoreboard_request_begin(int64_t start_ms, const char *method, const char *uri, const char *request_id);

/* The request is done: state IDLE, one more request served. */
void scoreboard_request_end(void);

/* The pid of this process's PostgreSQL backend (db_backend_pid(); 0 = not
 * connected), for the master to terminate it should this process die in
 * the middle of a request (issue 10, defect 9). */
void scoreboard_set_backend_pid(int pid);

/* Requests served by this process (its own entry). */
uint64_t scoreboard_requests_served(void);

/* Add n database connections this process opened since its last call. */
void scoreboard_add_db_connects(uint64_t n);

/* Note that a process found the database schema at version: 1 if it is the
 * first to note this version since another (it logs it), else 0; always 1
 * without a scoreboard (callstopctl, tests). */
int scoreboard_note_schema(int version);

/* ---- metrics (any process) ---- */

/* One request of route (a registered name, else not counted) answered with
 * HTTP status in ms. */
void scoreboard_count_request(const char *route, int status, int64_t ms);

/* A cancel result: type 0 call, 1 batch; outcome 0 cancelled, 1 terminal,
 * 2 already_cancelled, 3 not_found. */
void scoreboard_count_cancel(int type, int outcome);

/* An outbox termination attempt: provider 0 livekit, 1 openai; result 0 done,
 * 1 retry (still pending), 2 failed (dead-lettered). */
void scoreboard_count_outbox(int provider, int result);

/* n Idempotency-Keys stored (pruned 0) or pruned (1) (SPEC 8). */
void scoreboard_count_idempotency(int pruned, uint64_t n);

/* Verified termination (SPEC 11), provider 0 livekit, 1 openai: a target
 * verified silent ms after its cancel; one found unknown; one escalation
 * round (RemoveParticipant, DeleteRoom again). */
void scoreboard_count_silence(int provider, int64_t ms);
void scoreboard_count_unknown(int provider);
void scoreboard_count_escalation(int provider);
/* A webhook delivery attempt: outcome 0 delivered, 1 retry, 2 failed (too
 * old), 3 gone (410, endpoint disabled). */
void scoreboard_count_webhook(int outcome);

/* ---- readers ---- */

/* 1 if a scoreboard exists in this process. */
int scoreboard_enabled(void);

/* Number of entries (0 without a scoreboard). */
int scoreboard_size(void);

/* Copy entry index consistently into *p.  Returns 0, or -1 if the entry is
 * free or out of range. */
int scoreboard_read(int index, struct scoreboard_proc *p);

void scoreboard_totals(struct scoreboard_totals *t);

/* The registered route names; *n receives their number. */
const char *scoreboard_route(size_t i);
size_t scoreboard_nroutes(void);

/* Counters of route i: requests answered with status (100..599), latency
 * buckets (SCOREBOARD_BUCKETS + 1, not cumulative) and the sum in ms. */
uint64_t scoreboard_route_requests(size_t i, int status);
uint64_t scoreboard_route_bucket(size_t i, int bucket);
uint64_t scoreboard_route_ms_sum(size_t i);

uint64_t scoreboard_cancels(int type, int outcome);
uint64_t scoreboard_outbox(int provider, int result);
uint64_t scoreboard_idempotency(int pruned);

/* Provider's silence bucket (SCOREBOARD_SILENCE_BUCKETS + 1, not
 * cumulative), sum in ms, unknown and escalation counts. */
uint64_t scoreboard_silence_bucket(int provider, int bucket);
uint64_t scoreboard_silence_ms_sum(int provider);
uint64_t scoreboard_unknown(int provider);
uint64_t scoreboard_escalations(int provider);
uint64_t scoreboard_webhook(int outcome);

#endif
