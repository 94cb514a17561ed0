/*
 * notify.c - see notify.h.
 */
#include "config.h"

#include "pm/notify.h"

#ifdef HAVE_SYSTEMD

#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"

int notify_listen_fd(void)
{
	int n = sd_listen_fds(1);

	if (n < 0) {
		log_error("systemd socket activation: sd_listen_fds: error %d", -n);
		return -2;
	}
	if (n == 0)
		return -1;
	if (n > 1) {
		log_error("systemd socket activation: %d sockets passed, callstopd serves one", n);
		return -2;
	}
	if (sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		log_error("systemd socket activation: the passed fd is not a listening stream socket");
		return -2;
	}
	return SD_LISTEN_FDS_START;
}

void notify_ready(void)
{
	sd_notify(0, "READY=1");
}

void notify_reloading(void)
{
	struct timespec ts;
	char buf[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
	sd_notify(0, buf);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

#else /* !HAVE_SYSTEMD */

int notify_listen_fd(void)
{
	return -1;
}

void notify_ready(void)
{
}

void notify_reloading(void)
{
}

void notify_stopping(void)
{
}

#endif
