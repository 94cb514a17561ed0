/*
 * log.c - see log.h.  No locks and no stdio: every line is formatted into
 * one buffer and handed to one write(2) on an O_APPEND descriptor, which is
 * what keeps lines of the master and its workers whole in a shared file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* PIPE_BUF on Linux: writes up to this size to a pipe are atomic too. */
#define LOG_LINE_MAX 4096

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const int log_syslog_prio[] = {
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARN] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

/* sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG: journald reads the
 * priority of a line of a stream from this prefix. */
static const char *const log_journal_prio[] = {
	[LOG_LEVEL_ERROR] = "<3>",
	[LOG_LEVEL_WARN] = "<4>",
	[LOG_LEVEL_INFO] = "<6>",
	[LOG_LEVEL_DEBUG] = "<7>",
};

static struct {
	int journal; /* 1: stderr is the journal's stream (log_journal_stream) */
	char ident[32];
	char *path; /* NULL = stderr */
	int fd;
	enum conf_log_level level;
	int syslog;    /* 1: lines go to syslog(3) */
	int defer_sig; /* log_reopen_on_pending(): checked before each line, 0 = none */
} log_state = { 0, "callstop", NULL, STDERR_FILENO, LOG_LEVEL_INFO, 0, 0 };

/* set by a signal handler (log_reopen_later), taken before the next line */
static volatile sig_atomic_t log_reopen_asked;

static int log_open_file(const char *path)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY;
	int fd = open(path, flags | O_CREAT | O_EXCL, 0640);

	/* 0640: request lines carry tenant names and ids; logrotate's "create
	 * 0640" makes the next one so, and a new one is made so here under the
	 * unit's UMask=0077 too.  An existing file keeps the mode it has. */
	if (fd >= 0)
		return fchmod(fd, 0640) == 0 || errno == EPERM ? fd : (close(fd), -1);
	return errno == EEXIST ? open(path, flags | O_CREAT, 0640) : -1;
}

/* Is stderr the journal's stream?  systemd sets JOURNAL_STREAM to its
 * "device:inode" (systemd.exec(5)); stderr redirected elsewhere is not. */
static int log_journal_stream(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return v != NULL && sscanf(v, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_open(const char *ident, const char *path, enum conf_log_level level)
{
	char *copy = NULL;
	int fd = STDERR_FILENO, saved;

	if (ident != NULL)
		snprintf(log_state.ident, sizeof(log_state.ident), "%s", ident);
	log_state.level = level;
	if (path != NULL && path[0] != '\0') {
		copy = strdup(path);
		if (copy == NULL)
			return -1;
		fd = log_open_file(path);
		if (fd < 0) {
			saved = errno;
			free(copy);
			errno = saved;
			return -1;
		}
	}
	if (log_state.fd != STDERR_FILENO)
		close(log_state.fd);
	free(log_state.path);
	log_state.journal = fd == STDERR_FILENO && log_journal_stream();
	log_state.fd = fd;
	log_state.path = copy;
	return 0;
}

int log_reopen(void)
{
	int fd;

	if (log_state.path == NULL)
		return 0;
	/* open first: if it fails, lines keep going to the old (renamed) file */
	fd = log_open_file(log_state.path);
	if (fd < 0)
		return -1;
	close(log_state.fd);
	log_state.fd = fd;
	return 0;
}

void log_reopen_later(void)
{
	log_reopen_asked = 1;
}

void log_reopen_on_pending(int sig)
{
	log_state.defer_sig = sig;
}

void log_reopen_if_asked(void)
{
	static const struct timespec now = { 0, 0 };
	sigset_t set;

	/* a deferred (blocked) reopen signal is taken here, as its handler
	 * would: the process may be in the middle of a request for a while */
	if (log_state.defer_sig != 0 && sigpending(&set) == 0 &&
	    sigismember(&set, log_state.defer_sig) == 1) {
		sigemptyset(&set);
		sigaddset(&set, log_state.defer_sig);
		if (sigtimedwait(&set, NULL, &now) == log_state.defer_sig)
			log_reopen_asked = 1;
	}
	if (!log_reopen_asked)
		return;
	log_reopen_asked = 0;
	/* logged to the old file, which is then still the one in use */
	if (log_reopen() < 0)
		log_error("cannot reopen the log file %s: %s", log_state.path, strerror(errno));
}

void log_set_syslog(int on)
{
	if (on && !log_state.syslog)
		/* openlog keeps a pointer to the ident: log_state's is static */
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_state.syslog)
		closelog();
	log_state.syslog = on ? 1 : 0;
}

int log_chown(uid_t uid, gid_t gid)
{
	if (log_state.path == NULL)
		return 0;
	return fchown(log_state.fd, uid, gid);
}

void log_set_level(enum conf_log_level level)
{
	log_state.level = level;
}

int log_enabled(enum conf_log_level level)
{
	return level <= log_state.level;
}

static void log_write(enum conf_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_write(enum conf_log_level level, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len, msg, i;
	ssize_t n;
	int w, saved = errno;

	if (!log_enabled(level))
		return;
	/* a reopen asked for (SIGUSR1) comes before any further line: once the
	 * master has signalled every process, nothing goes to the old file */
	log_reopen_if_asked();
	errno = saved;
	if (log_state.syslog) {
		w = vsnprintf(buf, sizeof(buf), fmt, ap);
		if (w < 0)
			goto out;
		for (i = 0; buf[i] != '\0'; i++)
			if (buf[i] == '\n' || buf[i] == '\r')
				buf[i] = ' ';
		syslog(log_syslog_prio[level], "%s", buf);
		goto out;
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (log_state.journal)
		w = snprintf(buf, sizeof(buf), "%s[%s] %s[%ld]: ", log_journal_prio[level],
			     log_level_names[level], log_state.ident, (long)getpid());
	else
		w = snprintf(buf, sizeof(buf),
			     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] %s[%ld]: ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, log_level_names[level], log_state.ident, (long)getpid());
	if (w < 0)
		goto out;
	msg = (size_t)w;

	/* a caller's %m must print its errno, not one left by the calls above */
	errno = saved;
	w = vsnprintf(buf + msg, sizeof(buf) - msg - 1, fmt, ap);
	if (w < 0)
		goto out;
	len = msg + (size_t)w;
	if (len > sizeof(buf) - 2) {
		len = sizeof(buf) - 2;
		memcpy(buf + len - 3, "...", 3);
	}
	/* a message with a newline in it would start a line without a prefix */
	for (i = msg; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[len++] = '\n';

	do
		n = write(log_state.fd, buf, len);
	while (n < 0 && errno == EINTR);
out:
	errno = saved;
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}

char *log_escape(char *dst, size_t dstlen, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)(src != NULL ? src : "");
	size_t o = 0;

	if (dstlen == 0)
		return dst;
	for (; *s != '\0'; s++) {
		if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\') {
			/* never cut an escape in half: a torn "\x1" reads as data */
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[*s >> 4];
			dst[o++] = hex[*s & 0xf];
		} else {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)*s;
		}
	}
	dst[o] = '\0';
	return dst;
}
