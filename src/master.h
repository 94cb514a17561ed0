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

#include "conf.h"

/*
 * Open the listening socket described by cfg->listen (unix: unlink a stale
 * socket, bind, chmod listen_mode, chgrp listen_group; TCP: SO_REUSEADDR).
 * Returns the fd, or -1 after logging why.
 */
int master_listen(const struct conf *cfg);

/*
 * Connections waiting in the accept queue of the listening socket fd, and
 * its backlog (TCP: TCP_INFO; unix: sock_diag).  Returns 0, or -1 if the
 * kernel cannot tell.
 */
int master_listen_queue(int fd, unsigned *queue, unsigned *backlog);

/*
 * Run the master loop with cfg (ownership passes to the master, which may
 * replace it on reload): write the pid file, drop privileges (cfg->user),
 * map the scoreboard, fork the workers and supervise them.  inherited: the
 * socket was passed by systemd (never unlinked).  Returns the process exit
 * status.
 */
int master_run(struct conf *cfg, int listen_fd, int inherited);

#endif
