/*
 * priv.h - the privilege drop of callstopd, after OpenBSD's slowcgi.
 *
 * Started as root, callstopd binds its socket, then the master itself
 * becomes the configured user (supplementary groups, gid, uid, all three of
 * each) before it forks anything, and checks that it cannot become root
 * again.  Started as another user, it runs as that user.
 */
#ifndef CALLSTOP_PRIV_H
#define CALLSTOP_PRIV_H

#include "common/conf.h"

/*
 * Drop to cfg->user if running as root and it is set: sock_path (a unix
 * socket we created, or NULL) and the log file are given to that user first
 * (the socket keeps listen_group if set, else gets the user's group).
 * As root without user: a warning.  Returns 0, or -1 after logging why (the
 * caller must not go on).
 */
int priv_drop(const struct conf *cfg, const char *sock_path) MUST_CHECK;

#endif
