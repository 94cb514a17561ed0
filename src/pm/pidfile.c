/*
 * pidfile.c - the master's pid file (pid_file), written before the
 * privilege drop and removed at exit by master_run().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "pm/master_int.h"

int master_pidfile_write(const char *path)
{
	char buf[32];
	int fd, len, saved;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_error("pid_file %s: %s", path, strerror(errno));
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	n = write(fd, buf, (size_t)len);
	saved = n < 0 ? errno : EIO;
	if (close(fd) < 0 && n == len) {
		n = -1;
		saved = errno;
	}
	if (n != len) {
		log_error("pid_file %s: write: %s", path, strerror(saved));
		unlink(path);
		return -1;
	}
	return 0;
}
