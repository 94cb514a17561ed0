/*
 * listen.c - see listen.h.
 */
#include "config.h"

#include "common/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

/* How long a socket may stay held by the children of a master that died
 * (ms), and how often it is asked again. */
#define LISTEN_PROBE_MS 3000
#define LISTEN_PROBE_STEP_MS 50

/*
 * The socket at path exists: 0 if nobody answers on it (a crash's leftover,
 * safe to remove), -1 (logged) if a process serves it.  A master that was
 * killed leaves its children holding the socket until their parent-death
 * signal has ended them (a fraction of a second, more on a loaded machine):
 * a restart asks again for up to LISTEN_PROBE_MS before it calls the socket
 * in use.
 */
static int listen_probe(const char *path, const struct sockaddr_un *sun)
{
	int probe, rc;

	for (int waited = 0;; waited += LISTEN_PROBE_STEP_MS) {
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			log_error("listen %s: socket: %s", path, strerror(errno));
			return -1;
		}
		rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
		if (rc != 0 || waited >= LISTEN_PROBE_MS)
			break;
		close(probe);
		usleep(LISTEN_PROBE_STEP_MS * 1000);
	}
	if (rc == 0 || errno != ECONNREFUSED) {
		if (rc == 0)
			log_error("listen %s: in use by a running process", path);
		else
			log_error("listen %s: cannot tell whether it is in use: %s", path, strerror(errno));
		close(probe);
		return -1;
	}
	close(probe);
	return 0;
}

static int listen_open_unix(const struct conf *cfg)
{
	const char *path = cfg->listen;
	struct sockaddr_un sun;
	struct group *gr;
	struct stat st;
	mode_t old_umask;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("listen %s: path too long for a unix socket", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);

	/* Remove a socket left by a crash, but never one that a running
	 * callstopd still serves, and never a file that is not a socket. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("listen %s: exists and is not a socket", path);
			return -1;
		}
		if (listen_probe(path, &sun) < 0)
			return -1;
		if (unlink(path) < 0) {
			log_error("listen %s: unlink stale socket: %s", path, strerror(errno));
			return -1;
		}
	} else if (errno != ENOENT) {
		log_error("listen %s: %s", path, strerror(errno));
		return -1;
	}

	/* no FD_CLOEXEC: the workers inherit it */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		log_error("listen %s: socket: %s", path, strerror(errno));
		return -1;
	}
	/* the umask closes the window between bind and chmod in which the
	 * socket would have the default mode */
	old_umask = umask(0777 & ~cfg->listen_mode);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (rc < 0) {
		log_error("listen %s: bind: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, cfg->listen_mode) < 0) {
		log_error("listen %s: chmod %04o: %s", path, (unsigned)cfg->listen_mode, strerror(errno));
		goto fail;
	}
	if (cfg->listen_group != NULL) {
		errno = 0;
		gr = getgrnam(cfg->listen_group);
		if (gr == NULL) {
			log_error("listen %s: listen_group %s: %s", path, cfg->listen_group,
				  errno != 0 ? strerror(errno) : "no such group");
			goto fail;
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) < 0) {
			log_error("listen %s: chown to group %s: %s", path, cfg->listen_group,
				  strerror(errno));
			goto fail;
		}
	}
	if (listen(fd, cfg->listen_backlog) < 0) {
		log_error("listen %s: listen: %s", path, strerror(errno));
		goto fail;
	}
	return fd;

fail:
	close(fd);
	unlink(path);
	return -1;
}

static int listen_open_tcp(const struct conf *cfg)
{
	struct addrinfo hints, *res, *ai;
	char host[256], port[8];
	int fd = -1, one = 1, rc, saved = 0;

	if (conf_listen_split(cfg->listen, host, sizeof(host), port, sizeof(port)) < 0) {
		log_error("listen %s: expected host:port", cfg->listen);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		log_error("listen %s: %s", cfg->listen,
			  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		/* a restart must not wait for TIME_WAIT connections of the last run */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, cfg->listen_backlog) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		log_error("listen %s: %s", cfg->listen, strerror(saved));
	return fd;
}

int listen_open(const struct conf *cfg)
{
	if (conf_listen_is_unix(cfg))
		return listen_open_unix(cfg);
	return listen_open_tcp(cfg);
}

/* A listening unix socket's queue, from the kernel's sock_diag (what
 * "ss -xl" shows): rqueue is the connections waiting, wqueue the backlog. */
static int listen_unix_queue(int fd, unsigned *queue, unsigned *backlog)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	union {
		char buf[8192];
		struct nlmsghdr align;
	} resp;
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	struct stat st;
	struct nlmsghdr *h;
	ssize_t n;
	int nl, found = -1;

	if (fstat(fd, &st) < 0)
		return -1;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = 1u << 10; /* TCP_LISTEN */
	msg.req.udiag_ino = (unsigned)st.st_ino;
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u; /* no cookie */
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0) {
		close(nl);
		return -1;
	}
	n = recv(nl, resp.buf, sizeof(resp.buf), 0);
	close(nl);
	for (h = &resp.align; n > 0 && NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *udm = NLMSG_DATA(h);
		struct rtattr *a;
		int alen;

		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			break;
		alen = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*udm));
		for (a = (struct rtattr *)(udm + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == UNIX_DIAG_RQLEN &&
			    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
				struct unix_diag_rqlen *q = RTA_DATA(a);
				*queue = q->udiag_rqueue;
				*backlog = q->udiag_wqueue;
				found = 0;
			}
		}
	}
	return found;
}

int listen_queue(int fd, unsigned *queue, unsigned *backlog)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct tcp_info info;

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_UNIX)
		return listen_unix_queue(fd, queue, backlog);
	/* on a listening TCP socket: unacked = the accept queue, sacked = the
	 * backlog (what php-fpm reads too) */
	len = sizeof(info);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return -1;
	*queue = info.tcpi_unacked;
	*backlog = info.tcpi_sacked;
	return 0;
}
