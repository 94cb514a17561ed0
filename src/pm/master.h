/*
 * master.h - the callstopd master: owns the listening socket, preforks the
 * workers, respawns the ones that die, and stops them all on a signal.
 *
 * Signals (php-fpm's meanings, SPEC section 7), delivered through a self-pipe
 * so that no handler does real work: TERM/INT fast stop, QUIT graceful stop,
 * HUP reload, USR1 reopen logs, CHLD reap.  Every second it reads the
 * scoreboard and kills a worker busy past request_timeout.
 */
#ifndef CALLSTOP_MASTER_H
#define CALLSTOP_MASTER_H

#include "common/conf.h"

/*
 * Run the master loop with cfg (ownership passes to the master, which may
 * replace it on reload): write the pid file, drop privileges (cfg->user),
 * map the scoreboard, fork the workers and supervise them.  inherited: the
 * socket was passed by systemd (never unlinked).  Returns the process exit
 * status.
 */
int master_run(struct conf *cfg, int listen_fd, int inherited);

#endif
