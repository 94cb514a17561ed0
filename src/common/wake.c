/*
 * wake.c - see wake.h.
 */
#include "config.h"

#include "common/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const char *const wake_names[WAKE_N] = {
	[WAKE_OUTBOX] = "callstop_outbox",
	[WAKE_WEBHOOK] = "callstop_webhook",
};

/* [c][0] read end, [c][1] write end; -1 = none.  Inherited across fork. */
static int wake_pipes[WAKE_N][2] = { { -1, -1 }, { -1, -1 } };

int wake_open(void)
{
	int c;

	for (c = 0; c < WAKE_N; c++) {
		if (wake_pipes[c][0] >= 0)
			continue;
		if (pipe2(wake_pipes[c], O_NONBLOCK | O_CLOEXEC) < 0) {
			int e = errno;

			wake_pipes[c][0] = wake_pipes[c][1] = -1;
			errno = e;
			return -1;
		}
	}
	return 0;
}

int wake_channel_of(const char *name)
{
	int c;

	for (c = 0; name != NULL && c < WAKE_N; c++)
		if (strcmp(name, wake_names[c]) == 0)
			return c;
	return -1;
}

const char *wake_channel_name(enum wake_channel c)
{
	return wake_names[c];
}

int wake_ready(enum wake_channel c)
{
	return wake_pipes[c][1] >= 0;
}

void wake_post(enum wake_channel c)
{
	ssize_t n;

	if (wake_pipes[c][1] < 0)
		return;
	/* EAGAIN: the pipe is full of wake-ups not taken yet; EINTR: again */
	do
		n = write(wake_pipes[c][1], "w", 1);
	while (n < 0 && errno == EINTR);
}

int wake_fd(enum wake_channel c)
{
	return wake_pipes[c][0];
}

int wake_take(enum wake_channel c)
{
	char buf[256];
	ssize_t n;
	int got = 0;

	if (wake_pipes[c][0] < 0)
		return 0;
	while ((n = read(wake_pipes[c][0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		got |= n > 0;
	return got;
}
