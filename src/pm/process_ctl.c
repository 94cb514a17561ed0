/*
 * process_ctl.c - stopping, reloading and watching the children, after
 * php-fpm's fpm_process_ctl: a stop escalates QUIT -> TERM -> KILL so that
 * the master never leaves an orphan behind; a reload forks the new
 * generation before the old one drains; once a second the watchdog kills a
 * worker whose request has run past request_timeout (php-fpm's
 * request_terminate_timeout, checked in fpm_pctl_heartbeat).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "pm/master_int.h"
#include "pm/notify.h"

/* Sends sig and arms the next escalation timeout_ms from now. */
static void master_child_signal(struct master_child *c, int sig, int64_t timeout_ms, int64_t now)
{
	char buf[32];

	if (kill(c->pid, sig) < 0 && errno != ESRCH)
		log_error("%s (pid %ld): kill %s: %s", c->name, (long)c->pid,
			  master_signame(sig, buf, sizeof(buf)), strerror(errno));
	c->stop_sig = sig;
	c->sent_ms = now;
	c->deadline_ms = sig == SIGKILL ? 0 : now + timeout_ms;
}

static int master_sig_strength(int sig)
{
	return sig == SIGKILL ? 3 : sig == SIGTERM ? 2 : sig == SIGQUIT ? 1 : 0;
}

/* QUIT or TERM every child that has not had that much yet.  all = 0: only
 * the children of older generations (a reload). */
void master_stop_children(struct master *m, int sig, int all, int64_t now)
{
	int64_t timeout = (int64_t)m->cfg->process_control_timeout * 1000;
	size_t i;

	for (i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];

		if (!all && c->gen == m->gen)
			continue;
		if (master_sig_strength(c->stop_sig) < master_sig_strength(sig))
			master_child_signal(c, sig, timeout, now);
	}
}

void master_escalate(struct master *m, int64_t now)
{
	char b1[32], b2[32];
	size_t i;

	for (i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];
		int next;

		if (c->deadline_ms == 0 || now < c->deadline_ms)
			continue;
		next = c->stop_sig == SIGQUIT ? SIGTERM : SIGKILL;
		log_warn("%s (pid %ld) still running %lld ms after %s, sending %s", c->name, (long)c->pid,
			 (long long)(now - c->sent_ms), master_signame(c->stop_sig, b1, sizeof(b1)),
			 master_signame(next, b2, sizeof(b2)));
		master_child_signal(c, next, MASTER_TERM_AFTER_QUIT_MS, now);
	}
}

/*
 * Once a second: a worker busy past request_timeout is killed (SIGKILL: a
 * hung request ignores anything milder) and replaced; nginx sees its
 * connection close and answers 502.  Also samples the listen queue.
 */
void master_watchdog(struct master *m, int64_t now)
{
	int64_t limit = (int64_t)m->cfg->request_timeout * 1000;
	unsigned queue, backlog;
	struct scoreboard_proc p;
	size_t i;

	if (now < m->tick_ms)
		return;
	m->tick_ms = now + MASTER_TICK_MS;
	if (listen_queue(m->listen_fd, &queue, &backlog) == 0)
		scoreboard_note_listen_queue(queue);
	if (limit == 0)
		return;
	for (i = 0; i < m->nchildren; i++) {
		struct master_child *c = &m->children[i];

		if (c->stop_sig == SIGKILL || scoreboard_read(c->sb, &p) < 0)
			continue;
		if (p.state != SCOREBOARD_BUSY || p.pid != c->pid || now - p.request_start_ms <= limit)
			continue;
		log_error(
			"%s (pid %ld) exceeded request_timeout %d s serving %s %s request_id %s; killing it",
			c->name, (long)c->pid, m->cfg->request_timeout, p.method, p.uri, p.request_id);
		/* it will not count itself */
		if (limit >= m->cfg->slow_request_ms)
			scoreboard_count_slow();
		c->watchdog = 1;
		master_child_signal(c, SIGKILL, 0, now);
	}
}

/* Last resort when the loop itself fails: stop everything without poll(). */
void master_stop_now(struct master *m)
{
	int64_t now = clock_monotonic_ms(), deadline;
	struct timespec nap = { 0, 50 * 1000000 };
	size_t i;

	m->state = MASTER_STOPPING_FAST;
	master_stop_children(m, SIGTERM, 1, now);
	deadline = now + (int64_t)m->cfg->process_control_timeout * 1000;
	while (m->nchildren > 0) {
		now = clock_monotonic_ms();
		master_reap(m, now);
		if (m->nchildren == 0)
			break;
		if (now >= deadline) {
			for (i = 0; i < m->nchildren; i++)
				if (m->children[i].stop_sig != SIGKILL)
					master_child_signal(&m->children[i], SIGKILL, 0, now);
		}
		nanosleep(&nap, NULL);
	}
}

void master_begin_stop(struct master *m, enum master_state how, int64_t now)
{
	if (how == MASTER_STOPPING_FAST) {
		if (m->state == MASTER_STOPPING_FAST)
			return;
		notify_stopping();
		log_info("fast stop: sending SIGTERM to %zu workers", m->nchildren);
		m->state = MASTER_STOPPING_FAST;
		master_stop_children(m, SIGTERM, 1, now);
		return;
	}
	if (m->state != MASTER_RUNNING)
		return;
	notify_stopping();
	log_info("graceful stop: sending SIGQUIT to %zu workers", m->nchildren);
	m->state = MASTER_STOPPING_GRACEFUL;
	master_stop_children(m, SIGQUIT, 1, now);
}

static int master_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

void master_reload(struct master *m, int64_t now)
{
	char err[1024], changed[256];
	struct master_slot *slots;
	struct conf *neu;
	int n, i;

	log_info("reloading configuration from %s", m->cfg->path);
	notify_reloading();
	neu = conf_load(m->cfg->path, err, sizeof(err));
	if (neu == NULL) {
		log_error("reload failed, keeping the running configuration: %s", err);
		notify_ready();
		return;
	}
	n = conf_keep_restart_keys(neu, m->cfg, changed, sizeof(changed));
	slots = n < 0 ? NULL : calloc((size_t)MASTER_NSLOTS(neu), sizeof(*slots));
	if (slots == NULL) {
		log_error("reload failed, keeping the running configuration: out of memory");
		conf_free(neu);
		notify_ready();
		return;
	}
	if (!master_str_equal(neu->log_file, m->cfg->log_file) &&
	    log_open(NULL, neu->log_file, neu->log_level) < 0) {
		log_error("reload failed, keeping the running configuration: log_file %s: %s", neu->log_file,
			  strerror(errno));
		free(slots);
		conf_free(neu);
		notify_ready();
		return;
	}
	log_set_level(neu->log_level);
	log_set_syslog(neu->log_syslog);
	if (n > 0)
		log_warn("reload: %s changed, which needs a restart; keeping the running value%s (listen %s)",
			 changed, n > 1 ? "s" : "", neu->listen);

	conf_free(m->cfg);
	m->cfg = neu;
	free(m->slots);
	m->slots = slots;
	m->nslots = MASTER_NSLOTS(neu);
	m->gen++;
	scoreboard_set_gen(m->gen);
	for (i = 0; i < m->nslots; i++)
		master_spawn(m, i, now);
	/* the new generation accepts already; the old one finishes what it has */
	master_stop_children(m, SIGQUIT, 0, now);
	log_info("reload: generation %u, %d workers, the retry child%s; previous workers draining", m->gen,
		 neu->workers, neu->webhook_enabled ? " and the delivery child" : "");
	notify_ready();
}

void master_reopen(struct master *m)
{
	size_t i;

	int rc = log_reopen(), saved = errno;

	/* every child signalled before the line that says it is done: from
	 * that line on, no process writes to the old file (each takes the
	 * reopen before its next line, common/log.h) */
	for (i = 0; i < m->nchildren; i++)
		if (kill(m->children[i].pid, SIGUSR1) < 0 && errno != ESRCH)
			log_error("%s (pid %ld): kill SIGUSR1: %s", m->children[i].name,
				  (long)m->children[i].pid, strerror(errno));
	if (rc < 0)
		log_error("reopen log file %s: %s", m->cfg->log_file != NULL ? m->cfg->log_file : "(stderr)",
			  strerror(saved));
	else
		log_info("log file reopened");
}
