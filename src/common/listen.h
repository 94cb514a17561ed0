/*
 * listen.h - the FastCGI listening socket: opened by the master (pm/), read
 * by the status page (http/) through the worker context for its accept
 * queue.  Knows nothing of either.
 */
#ifndef CALLSTOP_LISTEN_H
#define CALLSTOP_LISTEN_H

#include "common/attr.h"
#include "common/conf.h"

/*
 * Open the listening socket described by cfg->listen (unix: unlink a stale
 * socket, bind, chmod listen_mode, chgrp listen_group; TCP: SO_REUSEADDR).
 * Returns the fd, or -1 after logging why.
 */
int listen_open(const struct conf *cfg) MUST_CHECK;

/*
 * Connections waiting in the accept queue of the listening socket fd, and
 * its backlog (TCP: TCP_INFO; unix: sock_diag).  Returns 0, or -1 if the
 * kernel cannot tell.
 */
int listen_queue(int fd, unsigned *queue, unsigned *backlog);

#endif
