/*
 * notify.h - systemd integration: readiness notification (Type=notify) and
 * socket activation (sd_listen_fds).  Built without libsystemd (configure
 * found none) every function is a no-op and no socket is ever passed.
 */
#ifndef CALLSTOP_NOTIFY_H
#define CALLSTOP_NOTIFY_H

/*
 * The listening socket passed by systemd (LISTEN_FDS, one stream socket),
 * or -1 if none was passed, or -2 after logging why the passed sockets are
 * unusable (more than one, or not a listening stream socket).
 */
int notify_listen_fd(void);

/* READY=1 (the first workers are started, or a reload is done). */
void notify_ready(void);

/* RELOADING=1 (with MONOTONIC_USEC, for Type=notify-reload). */
void notify_reloading(void);

/* STOPPING=1. */
void notify_stopping(void);

#endif
