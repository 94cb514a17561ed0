/*
 * log.h - one logger for master, workers and callstopctl.
 *
 * Lines go to stderr (foreground, or under systemd which adds its own time
 * stamp) or to the configured log file, opened O_APPEND so that all processes
 * can share it; log_reopen() reopens it (SIGUSR1, logrotate).  With
 * log_syslog they go to syslog(3) instead, facility daemon, at the priority
 * of their level (the time stamp and pid are then syslog's).
 * Format: "2026-11-21T04:58:19.123Z [info] callstopd[1234]: message".
 * On a stderr that is the journal's stream (JOURNAL_STREAM names its device
 * and inode, systemd.exec(5)) the time stamp is left to journald and the
 * line starts with the priority of sd-daemon(3) instead ("<3>[error] ...":
 * journalctl -p err finds it).  A log file is created 0640, logrotate's
 * "create" mode (packaging/callstop.logrotate), whatever the umask.
 * Each line is written with a single write(2), so lines of concurrent
 * processes never interleave.
 */
#ifndef CALLSTOP_LOG_H
#define CALLSTOP_LOG_H

#include <stddef.h>
#include <sys/types.h>

#include "common/conf.h"

/* ident: program name in every line ("callstopd"); NULL keeps the current
 * one (a reload that changes log_file).  path NULL or "" = stderr.
 * Calling it again switches to the new path (the old file is closed).
 * Returns 0, or -1 with errno if the file cannot be opened (the logger
 * then keeps writing where it did). */
int log_open(const char *ident, const char *path, enum conf_log_level level) MUST_CHECK;

/* Reopen the log file (no-op for stderr).  Returns 0 or -1 with errno. */
int log_reopen(void) MUST_CHECK;

/*
 * A reopen asked for by a signal (SIGUSR1, logrotate's postrotate) is taken
 * before the process writes its next line, so that once every process has
 * been signalled none writes to the old (renamed) file any more, even one in
 * the middle of a request.
 * log_reopen_later(): ask for it; async-signal-safe (a SIGUSR1 handler's).
 * log_reopen_on_pending(sig): this process keeps sig blocked while it works
 * (a worker defers SIGUSR1 during a request, http/worker.c); a pending sig
 * is then taken (sigtimedwait) and counts as asked.  0 = none (the default).
 * log_reopen_if_asked(): reopen now if asked (each log line calls it too; a
 * process calls it when idle so that the old file is closed without waiting
 * for a line).  A failure is logged, and lines keep going to the old file.
 */
void log_reopen_later(void);
void log_reopen_on_pending(int sig);
void log_reopen_if_asked(void);

/* on = 1: send lines to syslog(3) (facility daemon, the ident of log_open,
 * the socket opened now so that it survives a privilege drop); on = 0: back
 * to the file or stderr. */
void log_set_syslog(int on);

/* Give the open log file to uid:gid (before a privilege drop, so that a
 * SIGUSR1 reopen of the same path still works).  No-op for stderr.
 * Returns 0 or -1 with errno. */
int log_chown(uid_t uid, gid_t gid);

void log_set_level(enum conf_log_level level);
int log_enabled(enum conf_log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Copy untrusted text (a URI, a header) into dst (dstlen bytes, always
 * NUL-terminated, truncated if need be) with control characters, '"', '\\'
 * and bytes >= 0x7f written as \xHH, so that a client cannot forge log lines.
 * Returns dst.
 */
char *log_escape(char *dst, size_t dstlen, const char *src);

#endif
