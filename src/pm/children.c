/*
 * children.c - fork, reap and respawn, after php-fpm's fpm_children: the
 * master reaps every child (fcgiwrap's master does not, and fills the
 * process table with zombies), logs how each one ended, and respawns the
 * ones that die with a crash-loop backoff.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/scoreboard.h"
#include "http/worker.h"
#include "pm/master_int.h"
#include "pm/delivery.h"
#include "pm/retry.h"

static struct master_child *master_child_find(struct master *m, pid_t pid)
{
	size_t i;

	for (i = 0; i < m->nchildren; i++)
		if (m->children[i].pid == pid)
			return &m->children[i];
	return NULL;
}

/* The slots after the workers' are the retry child, then the delivery
 * child (when [webhook] enabled). */
static void master_slot_name(const struct master *m, int index, char *buf, size_t len)
{
	if (index == m->cfg->workers + 1)
		snprintf(buf, len, "delivery child");
	else if (index == m->cfg->workers)
		snprintf(buf, len, "retry child");
	else
		snprintf(buf, len, "worker %d", index);
}

/* Schedules the respawn of a slot whose worker lived lived_ms (-1: fork failed). */
static void master_slot_backoff(struct master *m, int index, int64_t lived_ms, int64_t now)
{
	struct master_slot *s = &m->slots[index];
	char name[24];

	if (lived_ms >= 0 && lived_ms > MASTER_STABLE_MS)
		s->backoff_ms = 0;
	if (lived_ms >= 0 && lived_ms >= MASTER_SHORT_LIFE_MS) {
		s->respawn_ms = now;
		return;
	}
	s->backoff_ms = s->backoff_ms == 0 ? MASTER_BACKOFF_MIN_MS : s->backoff_ms * 2;
	if (s->backoff_ms > MASTER_BACKOFF_MAX_MS)
		s->backoff_ms = MASTER_BACKOFF_MAX_MS;
	s->respawn_ms = now + s->backoff_ms;
	master_slot_name(m, index, name, sizeof(name));
	log_warn("%s: %s, respawning in %d ms (crash-loop backoff)", name,
		 lived_ms < 0 ? "could not be started" : "exited less than 1 s after its start",
		 s->backoff_ms);
}

int master_spawn(struct master *m, int index, int64_t now)
{
	int retry = index == m->cfg->workers, delivery = index == m->cfg->workers + 1;
	struct master_child *c;
	sigset_t set, old;
	pid_t pid;
	int saved, sb;

	/* grow first: a child forked but not recorded would never be stopped */
	if (m->nchildren == m->capchildren) {
		size_t cap = m->capchildren == 0 ? 16 : m->capchildren * 2;
		c = realloc(m->children, cap * sizeof(*c));
		if (c == NULL) {
			log_error("slot %d: out of memory", index);
			master_slot_backoff(m, index, -1, now);
			return -1;
		}
		m->children = c;
		m->capchildren = cap;
	}

	sb = scoreboard_assign(retry      ? SCOREBOARD_RETRY
			       : delivery ? SCOREBOARD_DELIVERY
					  : SCOREBOARD_WORKER,
			       index, m->gen);
	if (sb < 0)
		log_warn("slot %d: no free scoreboard entry (too many generations draining); "
			 "it runs without request_timeout",
			 index);

	/* blocked until the child has reset its handlers (master_child_init) */
	master_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid = fork();
	if (pid == 0) {
		/* the last slot is the retry child (SPEC 6), the others workers.
		 * The retry child does not serve, and must not outlive the
		 * master: its TERM (a stop) finishes the round in hand, so the
		 * master's death KILLs it instead.  Its claimed rows are retried
		 * once their claims expire: nothing committed is lost.  Nor may
		 * it keep the socket, or a restarted callstopd finds the path in
		 * use and nginx queues on a socket nobody accepts on (issue 10,
		 * defect 4). */
		master_child_init(m, retry || delivery ? SIGKILL : SIGTERM);
		scoreboard_attach(sb);
		scoreboard_started();
		if (retry || delivery) {
			close(m->listen_fd);
			if (delivery) /* the same, for the webhooks (SPEC 9) */
				delivery_main(m->cfg);
			retry_main(m->cfg);
		}
		worker_main(m->cfg, m->listen_fd, index);
	}
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("slot %d: fork: %s", index, strerror(saved));
		scoreboard_release(sb);
		master_slot_backoff(m, index, -1, now);
		return -1;
	}
	if (m->slots[index].spawned)
		scoreboard_count_respawn();
	m->slots[index].spawned = 1;

	c = &m->children[m->nchildren++];
	c->pid = pid;
	c->index = index;
	master_slot_name(m, index, c->name, sizeof(c->name));
	c->gen = m->gen;
	c->start_ms = now;
	c->stop_sig = 0;
	c->sent_ms = 0;
	c->deadline_ms = 0;
	c->sb = sb;
	c->watchdog = 0;
	m->slots[index].pid = pid;
	log_info("%s (pid %ld) started, generation %u", c->name, (long)pid, m->gen);
	return 0;
}

static void master_log_exit(const struct master_child *c, int status, int64_t lived_ms)
{
	char buf[32];
	long long s = lived_ms / 1000, d = (lived_ms % 1000) / 100;

	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0 || c->stop_sig != 0)
			log_info("%s (pid %ld) exited with status %d after %lld.%llds", c->name, (long)c->pid,
				 WEXITSTATUS(status), s, d);
		else
			log_warn("%s (pid %ld) exited with status %d after %lld.%llds", c->name, (long)c->pid,
				 WEXITSTATUS(status), s, d);
	} else if (WIFSIGNALED(status)) {
		const char *name = master_signame(WTERMSIG(status), buf, sizeof(buf));
		const char *core = WCOREDUMP(status) ? " (core dumped)" : "";

		if (WTERMSIG(status) == c->stop_sig)
			log_info("%s (pid %ld) killed by signal %s after %lld.%llds%s", c->name, (long)c->pid,
				 name, s, d, core);
		else
			log_warn("%s (pid %ld) killed by signal %s after %lld.%llds%s", c->name, (long)c->pid,
				 name, s, d, core);
	}
}

void master_reap(struct master *m, int64_t now)
{
	struct master_child c;
	struct master_child *p;
	pid_t pid;
	int status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		p = master_child_find(m, pid);
		if (p == NULL) {
			log_debug("reaped pid %ld, not a worker", (long)pid);
			continue;
		}
		c = *p;
		*p = m->children[--m->nchildren];

		master_log_exit(&c, status, now - c.start_ms);
		master_backend_orphan(m, &c);
		scoreboard_release(c.sb);
		if (c.gen != m->gen || c.index >= m->nslots || m->slots[c.index].pid != pid)
			continue;
		m->slots[c.index].pid = 0;
		if (m->state != MASTER_RUNNING || (c.stop_sig != 0 && !c.watchdog))
			continue;
		/* killed by the watchdog, or recycled after max_requests (exit 0
		 * unasked): replaced at once; anything else is a crash */
		if (c.watchdog || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
			m->slots[c.index].respawn_ms = now;
		else
			master_slot_backoff(m, c.index, now - c.start_ms, now);
	}
}

void master_respawn(struct master *m, int64_t now)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid == 0 && m->slots[i].respawn_ms <= now)
			master_spawn(m, i, now);
}
