/*
 * master.c - process manager of callstopd, after php-fpm's fpm_children,
 * fpm_signals and fpm_process_ctl: the main loop and master_run().
 *
 * The master does nothing but supervise: it holds the listening socket (never
 * closed while it runs, so a reload drops no connection), forks the workers
 * (children.c), reaps and respawns them, and stops them with an escalation
 * QUIT -> TERM -> KILL (process_ctl.c).
 *
 * Signal handlers only write the signal number to a self-pipe (signals.c);
 * the main loop poll()s the pipe with a timeout that is the next respawn or
 * escalation due, and at most a second while children run: every second it
 * reads the scoreboard and kills a worker whose request has run past
 * request_timeout.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "common/wake.h"
#include "http/router.h"
#include "pm/master.h"
#include "pm/master_int.h"
#include "pm/notify.h"
#include "pm/priv.h"

/* poll() timeout: until the next respawn or escalation due, -1 = none. */
static int master_timeout(const struct master *m, int64_t now)
{
	int64_t next = INT64_MAX;
	size_t i;
	int j;

	if (m->state == MASTER_RUNNING)
		for (j = 0; j < m->nslots; j++)
			if (m->slots[j].pid == 0 && m->slots[j].respawn_ms < next)
				next = m->slots[j].respawn_ms;
	for (i = 0; i < m->nchildren; i++)
		if (m->children[i].deadline_ms != 0 && m->children[i].deadline_ms < next)
			next = m->children[i].deadline_ms;
	if (m->nchildren > 0 && m->tick_ms < next)
		next = m->tick_ms;
	if (next == INT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static int master_loop(struct master *m)
{
	struct pollfd pfd;
	unsigned pending;
	int64_t now;
	int r, i;

	now = clock_monotonic_ms();
	m->tick_ms = now + MASTER_TICK_MS;
	for (i = 0; i < m->nslots; i++)
		master_spawn(m, i, now);
	notify_ready();

	while (m->state == MASTER_RUNNING || m->nchildren > 0) {
		pfd.fd = m->sigpipe[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, master_timeout(m, clock_monotonic_ms()));
		if (r < 0 && errno != EINTR) {
			log_error("poll: %s; stopping", strerror(errno));
			master_stop_now(m);
			return 1;
		}
		pending = r > 0 ? master_read_signals(m) : 0;
		now = clock_monotonic_ms();

		if (master_pending(pending, SIGTERM) || master_pending(pending, SIGINT))
			master_begin_stop(m, MASTER_STOPPING_FAST, now);
		if (master_pending(pending, SIGQUIT))
			master_begin_stop(m, MASTER_STOPPING_GRACEFUL, now);
		if (master_pending(pending, SIGHUP)) {
			if (m->state == MASTER_RUNNING)
				master_reload(m, now);
			else
				log_info("stopping: reload ignored");
		}
		if (master_pending(pending, SIGUSR1))
			master_reopen(m);

		/* not only on SIGCHLD: a reap is cheap, and a lost byte must not
		 * leave a zombie */
		master_reap(m, now);
		master_watchdog(m, now);
		master_escalate(m, now);
		if (m->state == MASTER_RUNNING)
			master_respawn(m, now);
	}
	return 0;
}

int master_run(struct conf *cfg, int listen_fd, int inherited)
{
	const char *routes[SCOREBOARD_ROUTES_MAX];
	struct master m;
	size_t nroutes;
	int rc = 1;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.listen_fd = listen_fd;
	m.pid = getpid();
	m.sigpipe[0] = m.sigpipe[1] = -1;
	m.state = MASTER_RUNNING;
	m.nslots = MASTER_NSLOTS(cfg); /* + the retry and delivery children */
	m.slots = calloc((size_t)m.nslots, sizeof(*m.slots));
	/* a socket systemd passed is systemd's to remove */
	if (conf_listen_is_unix(cfg) && !inherited)
		m.sock_path = strdup(cfg->listen);
	if (cfg->pid_file != NULL)
		m.pid_path = strdup(cfg->pid_file);
	if (m.slots == NULL || (conf_listen_is_unix(cfg) && !inherited && m.sock_path == NULL) ||
	    (cfg->pid_file != NULL && m.pid_path == NULL)) {
		log_error("master: out of memory");
		goto out;
	}
	if (m.pid_path != NULL && master_pidfile_write(m.pid_path) < 0) {
		free(m.pid_path);
		m.pid_path = NULL;
		goto out;
	}
	/* after the pid file (its directory may be root's), before any fork */
	if (priv_drop(cfg, m.sock_path) < 0)
		goto out;
	nroutes = router_names(routes, SCOREBOARD_ROUTES_MAX);
	if (scoreboard_create(MASTER_SCOREBOARD_SIZE, routes, nroutes) < 0) {
		log_error("scoreboard: %s", strerror(errno));
		goto out;
	}
	scoreboard_set_gen(m.gen);
	if (master_signals_init(&m) < 0)
		goto out;
	/* before the first fork: every process inherits the pipes (wake.h) */
	if (wake_open() < 0)
		log_warn("wake-ups: cannot open pipes: %s; the children are woken by NOTIFY",
			 strerror(errno));

	rc = master_loop(&m);
	log_info("callstopd stopped");

out:
	if (m.pid_path != NULL)
		unlink(m.pid_path);
	close(listen_fd);
	if (m.sock_path != NULL)
		unlink(m.sock_path);
	if (m.sigpipe[0] >= 0) {
		master_signals_reset();
		close(m.sigpipe[0]);
		close(m.sigpipe[1]);
	}
	free(m.pid_path);
	free(m.sock_path);
	free(m.slots);
	free(m.children);
	conf_free(m.cfg);
	return rc;
}
