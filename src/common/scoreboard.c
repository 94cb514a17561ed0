/*
 * scoreboard.c - see scoreboard.h.
 *
 * Each entry is a seqlock: its one writer makes the sequence odd, writes, and
 * makes it even again; a reader copies the entry and retries if the sequence
 * was odd or moved meanwhile.  The state is also read on its own (atomically)
 * by the scans that count busy and idle workers.
 */
#include "common/scoreboard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define SCOREBOARD_STATUS_MIN 100
#define SCOREBOARD_STATUS_N 500 /* 100..599 */

const int scoreboard_bucket_ms[SCOREBOARD_BUCKETS] = { 5,   10,   25,   50,   100,   250,
						       500, 1000, 2500, 5000, 10000, 30000 };

const int scoreboard_silence_ms[SCOREBOARD_SILENCE_BUCKETS] = { 50,   100,  250,   500,   1000,
								2500, 5000, 10000, 20000, 30000 };

struct scoreboard_entry {
	uint32_t seq;  /* odd while the owner writes */
	int32_t state; /* enum scoreboard_state */
	int32_t kind;  /* enum scoreboard_kind */
	int32_t slot;
	uint32_t gen;
	int32_t pid;
	int32_t backend_pid;
	int64_t started_ms;
	int64_t request_start_ms;
	uint64_t requests;
	char method[SCOREBOARD_METHOD_MAX];
	char uri[SCOREBOARD_URI_MAX];
	char request_id[SCOREBOARD_RID_MAX];
};

struct scoreboard {
	int nentries;
	int nroutes;
	int64_t start_time;
	uint32_t gen;
	uint32_t hwm; /* entries [0, hwm) have been assigned at least once */
	uint64_t accepted;
	uint64_t max_active;
	uint64_t slow_requests;
	uint64_t respawns;
	uint64_t db_connects;
	uint64_t max_listen_queue;
	int32_t schema_noted; /* the schema version last logged + 1, 0: none (db_schema.c) */
	char routes[SCOREBOARD_ROUTES_MAX][SCOREBOARD_ROUTE_NAME_MAX];
	uint64_t requests[SCOREBOARD_ROUTES_MAX][SCOREBOARD_STATUS_N];
	uint64_t buckets[SCOREBOARD_ROUTES_MAX][SCOREBOARD_BUCKETS + 1];
	uint64_t ms_sum[SCOREBOARD_ROUTES_MAX];
	uint64_t cancels[SCOREBOARD_CANCEL_TYPES][SCOREBOARD_CANCEL_OUTCOMES];
	uint64_t outbox[SCOREBOARD_PROVIDERS][SCOREBOARD_OUTBOX_RESULTS];
	uint64_t idempotency[2]; /* SPEC 8: keys stored, keys pruned */
	/* SPEC 11: counted by workers and by the retry child alike */
	uint64_t silence[SCOREBOARD_PROVIDERS][SCOREBOARD_SILENCE_BUCKETS + 1];
	uint64_t silence_ms_sum[SCOREBOARD_PROVIDERS];
	uint64_t unknown[SCOREBOARD_PROVIDERS];
	uint64_t escalations[SCOREBOARD_PROVIDERS];
	uint64_t webhook[SCOREBOARD_WEBHOOK_OUTCOMES];
	struct scoreboard_entry entries[];
};

static struct scoreboard *scoreboard;
static struct scoreboard_entry *scoreboard_self;

static void scoreboard_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static uint64_t scoreboard_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void scoreboard_max(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* ---- master ---- */

int scoreboard_create(int nentries, const char *const *routes, size_t nroutes)
{
	size_t size = sizeof(struct scoreboard) + (size_t)nentries * sizeof(struct scoreboard_entry);
	struct scoreboard *sb;
	size_t i;

	if (nentries <= 0 || nroutes > SCOREBOARD_ROUTES_MAX) {
		errno = EINVAL;
		return -1;
	}
	sb = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED)
		return -1;
	/* anonymous mappings are zero-filled: every entry is FREE */
	sb->nentries = nentries;
	sb->nroutes = (int)nroutes;
	sb->start_time = (int64_t)time(NULL);
	for (i = 0; i < nroutes; i++)
		snprintf(sb->routes[i], sizeof(sb->routes[i]), "%s", routes[i]);
	scoreboard = sb;
	return 0;
}

int scoreboard_assign(enum scoreboard_kind kind, int slot, unsigned gen)
{
	int i;

	if (scoreboard == NULL)
		return -1;
	for (i = 0; i < scoreboard->nentries; i++) {
		struct scoreboard_entry *e = &scoreboard->entries[i];

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != SCOREBOARD_FREE)
			continue;
		/* free: no process writes it, so plain stores are safe */
		memset((char *)e + sizeof(e->seq) + sizeof(e->state), 0,
		       sizeof(*e) - sizeof(e->seq) - sizeof(e->state));
		e->kind = kind;
		e->slot = slot;
		e->gen = gen;
		__atomic_store_n(&e->seq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&e->state, SCOREBOARD_STARTING, __ATOMIC_RELEASE);
		if ((uint32_t)i + 1 > __atomic_load_n(&scoreboard->hwm, __ATOMIC_RELAXED))
			__atomic_store_n(&scoreboard->hwm, (uint32_t)i + 1, __ATOMIC_RELEASE);
		return i;
	}
	return -1;
}

int scoreboard_release(int index)
{
	struct scoreboard_entry *e;
	int busy;

	if (scoreboard == NULL || index < 0 || index >= scoreboard->nentries)
		return 0;
	e = &scoreboard->entries[index];
	busy = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == SCOREBOARD_BUSY;
	__atomic_store_n(&e->pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->state, SCOREBOARD_FREE, __ATOMIC_RELEASE);
	return busy;
}

void scoreboard_set_gen(unsigned gen)
{
	if (scoreboard != NULL)
		__atomic_store_n(&scoreboard->gen, gen, __ATOMIC_RELAXED);
}

void scoreboard_count_respawn(void)
{
	if (scoreboard != NULL)
		scoreboard_add(&scoreboard->respawns, 1);
}

void scoreboard_count_slow(void)
{
	if (scoreboard != NULL)
		scoreboard_add(&scoreboard->slow_requests, 1);
}

void scoreboard_note_listen_queue(unsigned queue)
{
	if (scoreboard != NULL)
		scoreboard_max(&scoreboard->max_listen_queue, queue);
}

/* ---- the owner of an entry ---- */

static void scoreboard_write_begin(struct scoreboard_entry *e)
{
	uint32_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&e->seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void scoreboard_write_end(struct scoreboard_entry *e)
{
	uint32_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&e->seq, s + 1, __ATOMIC_RELEASE);
}

void scoreboard_attach(int index)
{
	scoreboard_self = scoreboard != NULL && index >= 0 && index < scoreboard->nentries
				  ? &scoreboard->entries[index]
				  : NULL;
}

void scoreboard_started(void)
{
	struct scoreboard_entry *e = scoreboard_self;

	if (e == NULL)
		return;
	scoreboard_write_begin(e);
	e->pid = (int32_t)getpid();
	e->started_ms = clock_monotonic_ms();
	e->request_start_ms = 0;
	__atomic_store_n(&e->state, SCOREBOARD_IDLE, __ATOMIC_RELAXED);
	scoreboard_write_end(e);
}

/* Workers busy now (a scan: no counter to leak when a busy worker is
 * killed). */
static int scoreboard_count_state(enum scoreboard_state state)
{
	uint32_t i, hwm;
	int n = 0;

	if (scoreboard == NULL)
		return 0;
	hwm = __atomic_load_n(&scoreboard->hwm, __ATOMIC_ACQUIRE);
	for (i = 0; i < hwm && i < (uint32_t)scoreboard->nentries; i++) {
		struct scoreboard_entry *e = &scoreboard->entries[i];

		if (e->kind == SCOREBOARD_WORKER &&
		    __atomic_load_n(&e->state, __ATOMIC_RELAXED) == (int32_t)state)
			n++;
	}
	return n;
}

void scoreboard_request_begin(int64_t start_ms, const char *method, const char *uri, const char *request_id)
{
	struct scoreboard_entry *e = scoreboard_self;

	if (e == NULL)
		return;
	scoreboard_write_begin(e);
	e->request_start_ms = start_ms;
	log_escape(e->method, sizeof(e->method), method);
	log_escape(e->uri, sizeof(e->uri), uri);
	log_escape(e->request_id, sizeof(e->request_id), request_id);
	__atomic_store_n(&e->state, SCOREBOARD_BUSY, __ATOMIC_RELAXED);
	scoreboard_write_end(e);
	scoreboard_add(&scoreboard->accepted, 1);
	scoreboard_max(&scoreboard->max_active, (uint64_t)scoreboard_count_state(SCOREBOARD_BUSY));
}

void scoreboard_request_end(void)
{
	struct scoreboard_entry *e = scoreboard_self;

	if (e == NULL)
		return;
	scoreboard_write_begin(e);
	e->requests++;
	__atomic_store_n(&e->state, SCOREBOARD_IDLE, __ATOMIC_RELAXED);
	scoreboard_write_end(e);
}

void scoreboard_set_backend_pid(int pid)
{
	struct scoreboard_entry *e = scoreboard_self;

	if (e == NULL || e->backend_pid == pid)
		return;
	scoreboard_write_begin(e);
	e->backend_pid = pid;
	scoreboard_write_end(e);
}

uint64_t scoreboard_requests_served(void)
{
	return scoreboard_self != NULL ? scoreboard_self->requests : 0;
}

void scoreboard_add_db_connects(uint64_t n)
{
	if (scoreboard != NULL && n > 0)
		scoreboard_add(&scoreboard->db_connects, n);
}

int scoreboard_note_schema(int version)
{
	if (scoreboard == NULL)
		return 1;
	return __atomic_exchange_n(&scoreboard->schema_noted, version + 1, __ATOMIC_RELAXED) != version + 1;
}

/* ---- metrics ---- */

static int scoreboard_route_index(const char *route)
{
	int i;

	if (scoreboard == NULL || route == NULL)
		return -1;
	for (i = 0; i < scoreboard->nroutes; i++)
		if (strcmp(scoreboard->routes[i], route) == 0)
			return i;
	return -1;
}

void scoreboard_count_request(const char *route, int status, int64_t ms)
{
	int r = scoreboard_route_index(route), b;

	if (r < 0)
		return;
	if (status >= SCOREBOARD_STATUS_MIN && status < SCOREBOARD_STATUS_MIN + SCOREBOARD_STATUS_N)
		scoreboard_add(&scoreboard->requests[r][status - SCOREBOARD_STATUS_MIN], 1);
	if (ms < 0)
		ms = 0;
	for (b = 0; b < SCOREBOARD_BUCKETS && ms > scoreboard_bucket_ms[b]; b++)
		;
	scoreboard_add(&scoreboard->buckets[r][b], 1);
	scoreboard_add(&scoreboard->ms_sum[r], (uint64_t)ms);
}

void scoreboard_count_cancel(int type, int outcome)
{
	if (scoreboard != NULL && type >= 0 && type < SCOREBOARD_CANCEL_TYPES && outcome >= 0 &&
	    outcome < SCOREBOARD_CANCEL_OUTCOMES)
		scoreboard_add(&scoreboard->cancels[type][outcome], 1);
}

void scoreboard_count_outbox(int provider, int result)
{
	if (scoreboard != NULL && provider >= 0 && provider < SCOREBOARD_PROVIDERS && result >= 0 &&
	    result < SCOREBOARD_OUTBOX_RESULTS)
		scoreboard_add(&scoreboard->outbox[provider][result], 1);
}

void scoreboard_count_idempotency(int pruned, uint64_t n)
{
	if (scoreboard != NULL)
		scoreboard_add(&scoreboard->idempotency[pruned != 0], n);
}

static int scoreboard_provider_ok(int provider)
{
	return scoreboard != NULL && provider >= 0 && provider < SCOREBOARD_PROVIDERS;
}

void scoreboard_count_silence(int provider, int64_t ms)
{
	int b;

	if (!scoreboard_provider_ok(provider))
		return;
	if (ms < 0)
		ms = 0;
	for (b = 0; b < SCOREBOARD_SILENCE_BUCKETS && ms > scoreboard_silence_ms[b]; b++)
		;
	scoreboard_add(&scoreboard->silence[provider][b], 1);
	scoreboard_add(&scoreboard->silence_ms_sum[provider], (uint64_t)ms);
}

void scoreboard_count_unknown(int provider)
{
	if (scoreboard_provider_ok(provider))
		scoreboard_add(&scoreboard->unknown[provider], 1);
}

void scoreboard_count_escalation(int provider)
{
	if (scoreboard_provider_ok(provider))
		scoreboard_add(&scoreboard->escalations[provider], 1);
}

void scoreboard_count_webhook(int outcome)
{
	if (scoreboard != NULL && outcome >= 0 && outcome < SCOREBOARD_WEBHOOK_OUTCOMES)
		scoreboard_add(&scoreboard->webhook[outcome], 1);
}

/* ---- readers ---- */

int scoreboard_enabled(void)
{
	return scoreboard != NULL;
}

int scoreboard_size(void)
{
	return scoreboard != NULL ? scoreboard->nentries : 0;
}

int scoreboard_read(int index, struct scoreboard_proc *p)
{
	struct scoreboard_entry *e, copy;
	uint32_t s1, s2;
	int tries;

	if (scoreboard == NULL || index < 0 || index >= scoreboard->nentries)
		return -1;
	e = &scoreboard->entries[index];
	if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == SCOREBOARD_FREE)
		return -1;
	/* A writer killed mid-write leaves the sequence odd until the master
	 * frees the entry: after a few tries, take what is there. */
	for (tries = 0; tries < 1000; tries++) {
		s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memcpy(&copy, e, sizeof(copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			break;
	}
	if (tries == 1000)
		memcpy(&copy, e, sizeof(copy));
	copy.method[sizeof(copy.method) - 1] = '\0';
	copy.uri[sizeof(copy.uri) - 1] = '\0';
	copy.request_id[sizeof(copy.request_id) - 1] = '\0';

	memset(p, 0, sizeof(*p));
	p->index = index;
	p->kind = (enum scoreboard_kind)copy.kind;
	p->slot = copy.slot;
	p->gen = copy.gen;
	p->pid = copy.pid;
	p->backend_pid = copy.backend_pid;
	p->state = (enum scoreboard_state)copy.state;
	if (p->state == SCOREBOARD_FREE)
		return -1;
	p->started_ms = copy.started_ms;
	p->request_start_ms = copy.request_start_ms;
	p->requests = copy.requests;
	memcpy(p->method, copy.method, sizeof(p->method));
	memcpy(p->uri, copy.uri, sizeof(p->uri));
	memcpy(p->request_id, copy.request_id, sizeof(p->request_id));
	return 0;
}

void scoreboard_totals(struct scoreboard_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (scoreboard == NULL)
		return;
	t->start_time = scoreboard->start_time;
	t->gen = __atomic_load_n(&scoreboard->gen, __ATOMIC_RELAXED);
	t->accepted = scoreboard_load(&scoreboard->accepted);
	t->max_active = scoreboard_load(&scoreboard->max_active);
	t->slow_requests = scoreboard_load(&scoreboard->slow_requests);
	t->respawns = scoreboard_load(&scoreboard->respawns);
	t->db_connects = scoreboard_load(&scoreboard->db_connects);
	t->max_listen_queue = scoreboard_load(&scoreboard->max_listen_queue);
	t->active = scoreboard_count_state(SCOREBOARD_BUSY);
	t->idle = scoreboard_count_state(SCOREBOARD_IDLE);
	t->total = t->active + t->idle + scoreboard_count_state(SCOREBOARD_STARTING);
}

size_t scoreboard_nroutes(void)
{
	return scoreboard != NULL ? (size_t)scoreboard->nroutes : 0;
}

const char *scoreboard_route(size_t i)
{
	return scoreboard != NULL && i < (size_t)scoreboard->nroutes ? scoreboard->routes[i] : NULL;
}

uint64_t scoreboard_route_requests(size_t i, int status)
{
	if (scoreboard == NULL || i >= (size_t)scoreboard->nroutes || status < SCOREBOARD_STATUS_MIN ||
	    status >= SCOREBOARD_STATUS_MIN + SCOREBOARD_STATUS_N)
		return 0;
	return scoreboard_load(&scoreboard->requests[i][status - SCOREBOARD_STATUS_MIN]);
}

uint64_t scoreboard_route_bucket(size_t i, int bucket)
{
	if (scoreboard == NULL || i >= (size_t)scoreboard->nroutes || bucket < 0 ||
	    bucket > SCOREBOARD_BUCKETS)
		return 0;
	return scoreboard_load(&scoreboard->buckets[i][bucket]);
}

uint64_t scoreboard_route_ms_sum(size_t i)
{
	if (scoreboard == NULL || i >= (size_t)scoreboard->nroutes)
		return 0;
	return scoreboard_load(&scoreboard->ms_sum[i]);
}

uint64_t scoreboard_cancels(int type, int outcome)
{
	if (scoreboard == NULL || type < 0 || type >= SCOREBOARD_CANCEL_TYPES || outcome < 0 ||
	    outcome >= SCOREBOARD_CANCEL_OUTCOMES)
		return 0;
	return scoreboard_load(&scoreboard->cancels[type][outcome]);
}

uint64_t scoreboard_outbox(int provider, int result)
{
	if (scoreboard == NULL || provider < 0 || provider >= SCOREBOARD_PROVIDERS || result < 0 ||
	    result >= SCOREBOARD_OUTBOX_RESULTS)
		return 0;
	return scoreboard_load(&scoreboard->outbox[provider][result]);
}

uint64_t scoreboard_idempotency(int pruned)
{
	return scoreboard != NULL ? scoreboard_load(&scoreboard->idempotency[pruned != 0]) : 0;
}

uint64_t scoreboard_silence_bucket(int provider, int bucket)
{
	if (!scoreboard_provider_ok(provider) || bucket < 0 || bucket > SCOREBOARD_SILENCE_BUCKETS)
		return 0;
	return scoreboard_load(&scoreboard->silence[provider][bucket]);
}

uint64_t scoreboard_silence_ms_sum(int provider)
{
	return scoreboard_provider_ok(provider) ? scoreboard_load(&scoreboard->silence_ms_sum[provider]) : 0;
}

uint64_t scoreboard_unknown(int provider)
{
	return scoreboard_provider_ok(provider) ? scoreboard_load(&scoreboard->unknown[provider]) : 0;
}

uint64_t scoreboard_escalations(int provider)
{
	return scoreboard_provider_ok(provider) ? scoreboard_load(&scoreboard->escalations[provider]) : 0;
}

uint64_t scoreboard_webhook(int outcome)
{
	if (scoreboard == NULL || outcome < 0 || outcome >= SCOREBOARD_WEBHOOK_OUTCOMES)
		return 0;
	return scoreboard_load(&scoreboard->webhook[outcome]);
}
