/*
 * child.c - see child.h.
 */
#include "pm/child.h"

#include <stddef.h>
#include <string.h>

#include "common/log.h"

static volatile sig_atomic_t *child_quit;

static void child_on_quit(int sig)
{
	(void)sig;
	if (child_quit != NULL)
		*child_quit = 1;
}

static void child_on_usr1(int sig)
{
	(void)sig;
	log_reopen_later();
}

void child_signals(volatile sig_atomic_t *quit)
{
	struct sigaction sa;
	sigset_t none;

	child_quit = quit;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = child_on_quit;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = child_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
