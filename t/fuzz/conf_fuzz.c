/*
 * conf_fuzz.c - the configuration parser (src/common/conf.c,
 * callstop.conf(5)): any file through conf_load(), and a loaded one through
 * the reload rule (conf_keep_restart_keys) against itself.
 *
 * Invariants: a load either fails with a message or yields values inside
 * the documented ranges; reloading a configuration over itself changes no
 * restart-only key.  The secret files a fuzzed file may name are read like
 * any file: stdin is /dev/null, so naming /dev/stdin cannot block.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "fuzz.h"

static char conf_fuzz_path[64];
static int conf_fuzz_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (freopen("/dev/null", "r", stdin) == NULL)
		abort();
	snprintf(conf_fuzz_path, sizeof(conf_fuzz_path), "/tmp/conf_fuzz.XXXXXX");
	conf_fuzz_fd = mkstemp(conf_fuzz_path);
	if (conf_fuzz_fd < 0)
		abort();
	/* the name is enough while the fd stays open; nothing is left behind */
	unlink(conf_fuzz_path);
	snprintf(conf_fuzz_path, sizeof(conf_fuzz_path), "/proc/self/fd/%d", conf_fuzz_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024] = "", changed[256];
	struct conf *c, *again;

	if (conf_fuzz_fd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (ftruncate(conf_fuzz_fd, 0) < 0 ||
	    (size > 0 && pwrite(conf_fuzz_fd, data, size, 0) != (ssize_t)size))
		abort();
	c = conf_load(conf_fuzz_path, err, sizeof(err));
	if (c == NULL) {
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(c->database != NULL && c->listen != NULL);
	FUZZ_CHECK(c->workers >= 1 && c->workers <= CONF_WORKERS_MAX);
	FUZZ_CHECK(c->max_body_bytes > 0 && c->max_resources > 0);
	FUZZ_CHECK(conf_livekit_enabled(c) == (c->livekit_api_secret != NULL));
	again = conf_load(conf_fuzz_path, err, sizeof(err));
	FUZZ_CHECK(again != NULL);
	FUZZ_CHECK(conf_keep_restart_keys(again, c, changed, sizeof(changed)) == 0);
	conf_free(again);
	conf_free(c);
	return 0;
}
