/*
 * signals.c - the master's signals, after php-fpm's fpm_signals: handlers
 * only write the signal number to a self-pipe that the main loop poll()s,
 * so that no handler does real work; a child drops all of it right after
 * fork().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "pm/master_int.h"

static const int master_signals[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD };
#define MASTER_NSIGNALS (sizeof(master_signals) / sizeof(master_signals[0]))

static volatile sig_atomic_t master_sigpipe_wr = -1;

const char *master_signame(int sig, char *buf, size_t len)
{
	switch (sig) {
	case SIGABRT:
		return "SIGABRT";
	case SIGALRM:
		return "SIGALRM";
	case SIGBUS:
		return "SIGBUS";
	case SIGFPE:
		return "SIGFPE";
	case SIGHUP:
		return "SIGHUP";
	case SIGILL:
		return "SIGILL";
	case SIGINT:
		return "SIGINT";
	case SIGKILL:
		return "SIGKILL";
	case SIGPIPE:
		return "SIGPIPE";
	case SIGQUIT:
		return "SIGQUIT";
	case SIGSEGV:
		return "SIGSEGV";
	case SIGSYS:
		return "SIGSYS";
	case SIGTERM:
		return "SIGTERM";
	case SIGTRAP:
		return "SIGTRAP";
	case SIGUSR1:
		return "SIGUSR1";
	case SIGUSR2:
		return "SIGUSR2";
	case SIGXCPU:
		return "SIGXCPU";
	case SIGXFSZ:
		return "SIGXFSZ";
	}
	snprintf(buf, len, "signal %d", sig);
	return buf;
}

static void master_sig_handler(int signo)
{
	unsigned char b = (unsigned char)signo;
	int saved = errno;

	if (write(master_sigpipe_wr, &b, 1) < 0) {
		/* pipe full: the loop is already awake and will drain it */
	}
	errno = saved;
}

void master_sigset(sigset_t *set)
{
	size_t i;

	sigemptyset(set);
	for (i = 0; i < MASTER_NSIGNALS; i++)
		sigaddset(set, master_signals[i]);
}

int master_signals_init(struct master *m)
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
void master_signals_reset(void)
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

/* A child's USR1 before its own handler: the reopen is not lost. */
static void master_child_on_usr1(int sig)
{
	(void)sig;
	log_reopen_later();
}

/*
 * In the child, right after fork (signals are blocked, see master_spawn):
 * nothing of the master's signal machinery may survive, or a signal sent to
 * the worker before worker_main() installs its handlers would be written
 * into the master's pipe and taken for the master's own.
 */
void master_child_init(struct master *m, int pdeath_sig)
{
	struct sigaction sa;
	sigset_t none;
	size_t i;

	close(m->sigpipe[0]);
	close(m->sigpipe[1]);
	master_sigpipe_wr = -1;

	/* second line of defence if the master dies without stopping us */
	prctl(PR_SET_PDEATHSIG, pdeath_sig);
	if (getppid() != m->pid)
		_exit(1);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < MASTER_NSIGNALS; i++) {
		/* HUP must not kill a worker that has no handler yet, and a USR1
		 * that comes before its own handler must not be lost: the child
		 * was forked with the log file the master may just have left */
		sa.sa_handler = master_signals[i] == SIGHUP    ? SIG_IGN
				: master_signals[i] == SIGUSR1 ? master_child_on_usr1
							       : SIG_DFL;
		sigaction(master_signals[i], &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Drains the self-pipe; returns a bit per master_signals[] index. */
unsigned master_read_signals(struct master *m)
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

int master_pending(unsigned pending, int sig)
{
	size_t i;

	for (i = 0; i < MASTER_NSIGNALS; i++)
		if (master_signals[i] == sig)
			return (pending >> i) & 1;
	return 0;
}
