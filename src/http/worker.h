/*
 * worker.h - the request loop of one preforked worker.
 *
 * A worker accepts FastCGI connections on the listening socket it inherited
 * from the master, keeps one PostgreSQL connection (reconnecting by itself),
 * serves requests one at a time, and exits on SIGQUIT after the request in
 * hand (SIGTERM: at once), or after max_requests.  It keeps its scoreboard
 * entry (state, request in hand) up to date for the master's watchdog and
 * the status page.
 */
#ifndef CALLSTOP_WORKER_H
#define CALLSTOP_WORKER_H

#include "common/conf.h"

/*
 * Run the worker loop on listen_fd.  index is the worker slot (0..workers-1),
 * for log lines.  Never returns: exits with 0 on a requested stop, non-zero
 * on a fatal start-up error (the master logs it and backs off).
 * Called in the child right after fork(); installs its own signal handlers.
 */
void worker_main(const struct conf *cfg, int listen_fd, int index) __attribute__((noreturn));

#endif
