/*
 * master_int.h - the master's private state and the functions its files
 * share (master.c: the loop; signals.c; children.c; process_ctl.c;
 * pidfile.c; backend.c), as php-fpm splits fpm_* into fpm_signals,
 * fpm_children and fpm_process_ctl.  Nothing outside src/pm/master*.c and
 * those files includes it.
 *
 * Times are CLOCK_MONOTONIC milliseconds (clock_monotonic_ms()) unless
 * named otherwise.
 */
#ifndef CALLSTOP_MASTER_INT_H
#define CALLSTOP_MASTER_INT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/conf.h"

/* Crash-loop backoff: a worker that dies within MASTER_SHORT_LIFE_MS of its
 * start waits before respawn, 100 ms doubling up to 5 s; one that lived
 * MASTER_STABLE_MS resets the delay. */
#define MASTER_SHORT_LIFE_MS 1000
#define MASTER_STABLE_MS 10000
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 5000

/* A worker that ignored SIGQUIT for process_control_timeout is stuck; like
 * php-fpm, it gets this long after SIGTERM before SIGKILL. */
#define MASTER_TERM_AFTER_QUIT_MS 1000

/* The watchdog's period: request_timeout is checked this often. */
#define MASTER_TICK_MS 1000

/* Scoreboard entries: two generations of the most workers (the old one
 * draining after a reload), each with its retry and delivery children. */
#define MASTER_SCOREBOARD_SIZE (2 * (CONF_WORKERS_MAX + MASTER_AUX_CHILDREN))

/* The slots after the workers': the retry child (SPEC 6), then the
 * delivery child (SPEC 9) unless [webhook] enabled = no. */
#define MASTER_AUX_CHILDREN 2
#define MASTER_NSLOTS(cfg) ((cfg)->workers + 1 + ((cfg)->webhook_enabled ? 1 : 0))

struct master_child {
	pid_t pid;
	int index;           /* worker slot, for log lines */
	char name[24];       /* "worker 3" or "retry child" */
	unsigned gen;        /* configuration generation it was forked with */
	int64_t start_ms;    /* monotonic */
	int stop_sig;        /* strongest stop signal sent, 0 = none */
	int64_t sent_ms;     /* when stop_sig was sent */
	int64_t deadline_ms; /* escalate when reached; 0 = never */
	int sb;              /* scoreboard entry, -1 = none */
	int watchdog;        /* killed for request_timeout: respawn it */
};

/* One per worker of the current generation. */
struct master_slot {
	pid_t pid;          /* 0 = not running */
	int backoff_ms;     /* delay of the next short-lived respawn, 0 = none */
	int64_t respawn_ms; /* when pid == 0: spawn at this time */
	int spawned;        /* started once in this generation: next is a respawn */
};

enum master_state { MASTER_RUNNING, MASTER_STOPPING_GRACEFUL, MASTER_STOPPING_FAST };

struct master {
	struct conf *cfg;
	int listen_fd;
	pid_t pid;
	int sigpipe[2];
	unsigned gen;
	enum master_state state;
	struct master_slot *slots;
	int nslots;
	struct master_child *children;
	size_t nchildren, capchildren;
	char *sock_path; /* unix socket to remove at exit, NULL for TCP */
	char *pid_path;  /* pid file to remove at exit, NULL = none */
	int64_t tick_ms; /* next watchdog round */
};

/* ---- signals.c: the self-pipe ---- */

/* "SIGTERM", or "signal N" written into buf. */
const char *master_signame(int sig, char *buf, size_t len);

/* The signals the master handles (TERM INT QUIT HUP USR1 CHLD). */
void master_sigset(sigset_t *set);

/* Open the self-pipe and install the handlers.  Returns 0, or -1 logged. */
int master_signals_init(struct master *m);

/* Default dispositions; call before the pipe is closed. */
void master_signals_reset(void);

/* In a child right after fork(), signals blocked: drop the master's
 * signal machinery and everything else a child must not keep.  pdeath_sig
 * is what the child gets when the master dies (PR_SET_PDEATHSIG): SIGTERM
 * for a worker (its default action: stop at once), SIGKILL for the retry
 * child, whose TERM finishes the round in hand (up to outbox.timeout_ms). */
void master_child_init(struct master *m, int pdeath_sig);

/* Drain the self-pipe: a bit per signal seen, for master_pending(). */
unsigned master_read_signals(struct master *m);
int master_pending(unsigned pending, int sig);

/* ---- children.c: fork, reap, respawn ---- */

/* Fork the child of slot index (after the workers' slots: the retry child,
 * then the delivery child, MASTER_NSLOTS).
 * Returns 0, or -1 after logging and scheduling a retry. */
int master_spawn(struct master *m, int index, int64_t now);

/* Reap every exited child (never blocks), log how it ended, schedule its
 * respawn. */
void master_reap(struct master *m, int64_t now);

/* Spawn the slots whose respawn is due. */
void master_respawn(struct master *m, int64_t now);

/* ---- process_ctl.c: stop, reload, escalation, watchdog ---- */

void master_stop_children(struct master *m, int sig, int all, int64_t now);
void master_escalate(struct master *m, int64_t now);
void master_watchdog(struct master *m, int64_t now);
void master_stop_now(struct master *m);
void master_begin_stop(struct master *m, enum master_state how, int64_t now);
void master_reload(struct master *m, int64_t now);
void master_reopen(struct master *m);

/* ---- backend.c ---- */

/* c was reaped: if it died busy with a request, have its database backend
 * terminated by a short-lived helper process (never blocks). */
void master_backend_orphan(struct master *m, const struct master_child *c);

/* ---- pidfile.c ---- */

/* Write getpid() to path.  Returns 0, or -1 logged (nothing left behind). */
int master_pidfile_write(const char *path);

#endif
