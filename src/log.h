/*
 * log.h - one logger for master, workers and callstopctl.
 *
 * Lines go to stderr (foreground, or under systemd which adds its own time
 * stamp) or to the configured log file, opened O_APPEND so that all processes
 * can share it; log_reopen() reopens it (SIGUSR1, logrotate).
 * Format: "2026-11-21T04:58:19.123Z [info] callstopd[1234]: message".
 * Each line is written with a single write(2), so lines of concurrent
 * processes never interleave.
 */
#ifndef CALLSTOP_LOG_H
#define CALLSTOP_LOG_H

#include <stddef.h>

#include "conf.h"

/* ident: program name in every line ("callstopd"); NULL keeps the current
 * one (a reload that changes log_file).  path NULL or "" = stderr.
 * Calling it again switches to the new path (the old file is closed).
 * Returns 0, or -1 with errno if the file cannot be opened (the logger
 * then keeps writing where it did). */
int log_open(const char *ident, const char *path, enum conf_log_level level);

/* Reopen the log file (no-op for stderr).  Returns 0 or -1 with errno. */
int log_reopen(void);

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
