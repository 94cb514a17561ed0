/*
 * priv.c - see priv.h.
 */
#include "config.h"

#include "pm/priv.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

int priv_drop(const struct conf *cfg, const char *sock_path)
{
	struct passwd *pw;
	char name[64];
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0) {
		if (cfg->user != NULL)
			log_info("user = %s: not started as root, running as uid %ld", cfg->user,
				 (long)geteuid());
		return 0;
	}
	if (cfg->user == NULL) {
		log_warn("running as root: set user (e.g. user = callstop) so that workers run unprivileged");
		return 0;
	}

	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("user %s: %s", cfg->user, errno != 0 ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_error("user %s: has uid 0; name an unprivileged user", cfg->user);
		return -1;
	}
	/* getpwnam's buffer is overwritten by initgroups() */
	snprintf(name, sizeof(name), "%s", pw->pw_name);
	uid = pw->pw_uid;
	gid = pw->pw_gid;

	/* the master unlinks it at exit; nginx reaches it through listen_group */
	if (sock_path != NULL && chown(sock_path, uid, cfg->listen_group != NULL ? (gid_t)-1 : gid) < 0) {
		log_error("listen %s: chown to %s: %s", sock_path, name, strerror(errno));
		return -1;
	}
	/* so that a SIGUSR1 reopen of the same file still works */
	if (log_chown(uid, gid) < 0)
		log_warn("log_file %s: chown to %s: %s", cfg->log_file, name, strerror(errno));

	if (initgroups(name, gid) < 0) {
		log_error("user %s: initgroups: %s", name, strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		log_error("user %s: setresgid %ld: %s", name, (long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		log_error("user %s: setresuid %ld: %s", name, (long)uid, strerror(errno));
		return -1;
	}
	/* a drop that can be undone is no drop */
	if (setuid(0) != -1 || seteuid(0) != -1 || (gid != 0 && setgid(0) != -1)) {
		log_error("user %s: root privileges could be regained after the drop; refusing to run", name);
		return -1;
	}
	log_info("running as user %s (uid %ld, gid %ld)", name, (long)uid, (long)gid);
	return 0;
}
