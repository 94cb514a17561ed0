/*
 * master.c - process manager of callstopd, after php-fpm's fpm_children,
 * fpm_signals and fpm_process_ctl.
 *
 * The master does nothing but supervise: it holds the listening socket (never
 * closed while it runs, so a reload drops no connection), forks the workers,
 * reaps every child (fcgiwrap's master does not, and fills the process table
 * with zombies), respawns the ones that die with a crash-loop backoff, and
 * stops them with an escalation QUIT -> TERM -> KILL so that it never leaves
 * an orphan behind.
 *
 * Signal handlers only write the signal number to a self-pipe; the main loop
 * poll()s the pipe with a timeout that is the next respawn or escalation due,
 * and at most a second while children run: every second it reads the
 * scoreboard and kills a worker whose request has run past request_timeout
 * (php-fpm's request_terminate_timeout, checked in fpm_pctl_heartbeat).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/listen.h"
#include "common/log.h"
#include "pm/master.h"
#include "pm/notify.h"
#include "pm/priv.h"
#include "pm/retry.h"
#include "http/router.h"
#include "common/scoreboard.h"
#include "http/worker.h"

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
 * draining after a reload), each with its retry child. */
#define MASTER_SCOREBOARD_SIZE (2 * (CONF_WORKERS_MAX + 1))

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

static const int master_signals[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD };
#define MASTER_NSIGNALS (sizeof(master_signals) / sizeof(master_signals[0]))

static volatile sig_atomic_t master_sigpipe_wr = -1;

static const char *master_signame(int sig, char *buf, size_t len)
{
	switch (sig) {
	case SIGABRT: return "SIGABRT";
	case SIGALRM: return "SIGALRM";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGHUP: return "SIGHUP";
	case SIGILL: return "SIGILL";
	case SIGINT: return "SIGINT";
	case SIGKILL: return "SIGKILL";
	case SIGPIPE: return "SIGPIPE";
	case SIGQUIT: return "SIGQUIT";
	case SIGSEGV: return "SIGSEGV";
	case SIGSYS: return "SIGSYS";
	case SIGTERM: return "SIGTERM";
	case SIGTRAP: return "SIGTRAP";
	case SIGUSR1: return "SIGUSR1";
	case SIGUSR2: return "SIGUSR2";
	case SIGXCPU: return "SIGXCPU";
	case SIGXFSZ: return "SIGXFSZ";
	}
	snprintf(buf, len, "signal %d", sig);
	return buf;
}


/* ---- signals ------------------------------------------------------------ */

static void master_sig_handler(int signo)
{
	unsigned char b = (unsigned char)signo;
	int saved = errno;

	if (write(master_sigpipe_wr, &b, 1) < 0) {
		/* pipe full: the loop is already awake and will drain it */
	}
	errno = saved;
}

static void master_sigset(sigset_t *set)
{
	size_t i;

	sigemptyset(set);
	for (i = 0; i < MASTER_NSIGNALS; i++)
		sigaddset(set, master_signals[i]);
}

static int master_signals_init(struct master *m)
{
	struct sigaction sa;
	sigset_t set;
	size_t i;

	if (pipe2(m->sigpipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("signal pipe: %s", strerror(errno));
		return -1;
	}
	master_sigpipe_wr = m->sigpipe[1];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_sig_handler;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < MASTER_NSIGNALS; i++) {
		sa.sa_flags = SA_RESTART | (master_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
		if (sigaction(master_signals[i], &sa, NULL) < 0) {
			log_error("sigaction %d: %s", master_signals[i], strerror(errno));
			return -1;
		}
	}
	/* whoever started us may have left some of them blocked */
	master_sigset(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

/* Default dispositions once the pipe is closed: a handler writing into a
 * closed pipe would swallow a TERM sent while main() exits. */
static void master_signals_reset(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < MASTER_NSIGNALS; i++)
		sigaction(master_signals[i], &sa, NULL);
	master_sigpipe_wr = -1;
}

/*
 * In the child, right after fork (signals are blocked, see master_spawn):
 * nothing of the master's signal machinery may survive, or a signal sent to
 * the worker before worker_main() installs its handlers would be written
 * into the master's pipe and taken for the master's own.
 */
static void master_child_init(struct master *m)
{
	struct sigaction sa;
	sigset_t none;
	size_t i;

	close(m->sigpipe[0]);
	close(m->sigpipe[1]);
	master_sigpipe_wr = -1;

	/* second line of defence if the master dies without stopping us */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != m->pid)
		_exit(1);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < MASTER_NSIGNALS; i++) {
		/* USR1/HUP must not kill a worker that has no handler yet */
		sa.sa_handler = master_signals[i] == SIGUSR1 || master_signals[i] == SIGHUP ? SIG_IGN : SIG_DFL;
		sigaction(master_signals[i], &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- children ----------------------------------------------------------- */

static struct master_child *master_child_find(struct master *m, pid_t pid)
{
	size_t i;

	for (i = 0; i < m->nchildren; i++)
		if (m->children[i].pid == pid)
			return &m->children[i];
	return NULL;
}

/* The last slot is the retry child; the others are workers. */
static void master_slot_name(const struct master *m, int index, char *buf, size_t len)
{
	if (index == m->nslots - 1)
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
		 lived_ms < 0 ? "could not be started" : "exited less than 1 s after its start", s->backoff_ms);
}

static int master_spawn(struct master *m, int index, int64_t now)
{
	int retry = index == m->nslots - 1;
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

	sb = scoreboard_assign(retry ? SCOREBOARD_RETRY : SCOREBOARD_WORKER, index, m->gen);
	if (sb < 0)
		log_warn("slot %d: no free scoreboard entry (too many generations draining); "
			 "it runs without request_timeout", index);

	/* blocked until the child has reset its handlers (master_child_init) */
	master_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid = fork();
	if (pid == 0) {
		master_child_init(m);
		scoreboard_attach(sb);
		scoreboard_started();
		/* the last slot is the retry child (SPEC 6), the others workers */
		if (retry)
			retry_main(m->cfg);
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
static void master_stop_children(struct master *m, int sig, int all, int64_t now)
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

static void master_escalate(struct master *m, int64_t now)
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

static void master_log_exit(const struct master_child *c, int status, int64_t lived_ms)
{
	char buf[32];
	long long s = lived_ms / 1000, d = (lived_ms % 1000) / 100;

	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0 || c->stop_sig != 0)
			log_info("%s (pid %ld) exited with status %d after %lld.%llds", c->name,
				 (long)c->pid, WEXITSTATUS(status), s, d);
		else
			log_warn("%s (pid %ld) exited with status %d after %lld.%llds", c->name,
				 (long)c->pid, WEXITSTATUS(status), s, d);
	} else if (WIFSIGNALED(status)) {
		const char *name = master_signame(WTERMSIG(status), buf, sizeof(buf));
		const char *core = WCOREDUMP(status) ? " (core dumped)" : "";

		if (WTERMSIG(status) == c->stop_sig)
			log_info("%s (pid %ld) killed by signal %s after %lld.%llds%s", c->name,
				 (long)c->pid, name, s, d, core);
		else
			log_warn("%s (pid %ld) killed by signal %s after %lld.%llds%s", c->name,
				 (long)c->pid, name, s, d, core);
	}
}

static void master_reap(struct master *m, int64_t now)
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

static void master_respawn(struct master *m, int64_t now)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid == 0 && m->slots[i].respawn_ms <= now)
			master_spawn(m, i, now);
}

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

/*
 * Once a second: a worker busy past request_timeout is killed (SIGKILL: a
 * hung request ignores anything milder) and replaced; nginx sees its
 * connection close and answers 502.  Also samples the listen queue.
 */
static void master_watchdog(struct master *m, int64_t now)
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
		log_error("%s (pid %ld) exceeded request_timeout %d s serving %s %s request_id %s; killing it", c->name,
			  (long)c->pid, m->cfg->request_timeout, p.method, p.uri, p.request_id);
		/* it will not count itself */
		if (limit >= m->cfg->slow_request_ms)
			scoreboard_count_slow();
		c->watchdog = 1;
		master_child_signal(c, SIGKILL, 0, now);
	}
}

/* Last resort when the loop itself fails: stop everything without poll(). */
static void master_stop_now(struct master *m)
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

/* ---- control actions ------------------------------------------------------ */

static void master_begin_stop(struct master *m, enum master_state how, int64_t now)
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

static void master_reload(struct master *m, int64_t now)
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
	slots = n < 0 ? NULL : calloc((size_t)neu->workers + 1, sizeof(*slots));
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
	m->nslots = neu->workers + 1;
	m->gen++;
	scoreboard_set_gen(m->gen);
	for (i = 0; i < m->nslots; i++)
		master_spawn(m, i, now);
	/* the new generation accepts already; the old one finishes what it has */
	master_stop_children(m, SIGQUIT, 0, now);
	log_info("reload: generation %u, %d workers and the retry child; previous workers draining", m->gen,
		 neu->workers);
	notify_ready();
}

static void master_reopen(struct master *m)
{
	size_t i;

	if (log_reopen() < 0)
		log_error("reopen log file %s: %s", m->cfg->log_file != NULL ? m->cfg->log_file : "(stderr)",
			  strerror(errno));
	else
		log_info("log file reopened");
	for (i = 0; i < m->nchildren; i++)
		if (kill(m->children[i].pid, SIGUSR1) < 0 && errno != ESRCH)
			log_error("%s (pid %ld): kill SIGUSR1: %s", m->children[i].name,
				  (long)m->children[i].pid, strerror(errno));
}

/* ---- pid file and main loop ---------------------------------------------- */

static int master_pidfile_write(const char *path)
{
	char buf[32];
	int fd, len, saved;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_error("pid_file %s: %s", path, strerror(errno));
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	n = write(fd, buf, (size_t)len);
	saved = n < 0 ? errno : EIO;
	if (close(fd) < 0 && n == len) {
		n = -1;
		saved = errno;
	}
	if (n != len) {
		log_error("pid_file %s: write: %s", path, strerror(saved));
		unlink(path);
		return -1;
	}
	return 0;
}

/* Drains the self-pipe; returns a bit per master_signals[] index. */
static unsigned master_read_signals(struct master *m)
{
	unsigned char buf[64];
	unsigned pending = 0;
	ssize_t n, j;
	size_t i;

	while ((n = read(m->sigpipe[0], buf, sizeof(buf))) > 0)
		for (j = 0; j < n; j++)
			for (i = 0; i < MASTER_NSIGNALS; i++)
				if (buf[j] == master_signals[i])
					pending |= 1u << i;
	return pending;
}

static int master_pending(unsigned pending, int sig)
{
	size_t i;

	for (i = 0; i < MASTER_NSIGNALS; i++)
		if (master_signals[i] == sig)
			return (pending >> i) & 1;
	return 0;
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
	m.nslots = cfg->workers + 1;   /* + the retry child */
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
