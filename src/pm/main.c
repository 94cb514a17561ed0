/*
 * callstopd - the FastCGI daemon: reads the configuration, opens the socket
 * and hands over to the master.  It stays in the foreground; systemd (or the
 * test harness) supervises it, so there is no daemonize step to get wrong.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/conf.h"
#include "common/listen.h"
#include "common/log.h"
#include "pm/check.h"
#include "pm/master.h"
#include "pm/notify.h"

static void callstopd_usage(FILE *f)
{
	fprintf(f,
		"usage: callstopd [-t | -T] [-c file]\n"
		"       callstopd -V | -h\n"
		"  -c, --config file  configuration file (default $CALLSTOP_CONF or %s)\n"
		"  -t, --test         check the configuration file (as its user when run as root) and exit\n"
		"  -T, --test-connect the same, and connect to the database and check its schema\n"
		"  -V, -v, --version  print the version and exit\n"
		"  -h, --help         print this help and exit\n",
		CONF_DEFAULT_PATH);
}

static const struct option callstopd_options[] = {
	{ "config", required_argument, NULL, 'c' }, { "test", no_argument, NULL, 't' },
	{ "test-connect", no_argument, NULL, 'T' }, { "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	const char *path = getenv("CALLSTOP_CONF");
	struct sigaction sa;
	struct conf *cfg;
	char err[1024];
	int opt, test = 0, fd, inherited;

	if (path == NULL || path[0] == '\0')
		path = CONF_DEFAULT_PATH;
	while ((opt = getopt_long(argc, argv, "c:tThvV", callstopd_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = test ? test : 1;
			break;
		case 'T':
			test = 2;
			break;
		case 'v':
		case 'V':
			printf("callstopd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			callstopd_usage(stdout);
			return 0;
		default:
			callstopd_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		callstopd_usage(stderr);
		return 2;
	}

	if (test)
		return check_config(path, test == 2);
	cfg = conf_load(path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "callstopd: %s\n", err);
		return 1;
	}

	/* a client that hangs up must cost an error return, not a worker */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);

	if (log_open("callstopd", cfg->log_file, cfg->log_level) < 0) {
		fprintf(stderr, "callstopd: log_file %s: %s\n", cfg->log_file, strerror(errno));
		conf_free(cfg);
		return 1;
	}
	log_set_syslog(cfg->log_syslog);
	/* once, before any fork: libcurl's global state is not fork-safe to set up
	 * in each child */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		conf_free(cfg);
		return 1;
	}
	/* systemd socket activation: the socket is systemd's, listen is unused */
	fd = notify_listen_fd();
	inherited = fd >= 0;
	if (fd == -1)
		fd = listen_open(cfg);
	if (fd < 0) {
		conf_free(cfg);
		return 1;
	}
	log_info("callstopd %s started: %d workers on %s", PACKAGE_VERSION, cfg->workers,
		 inherited ? "the socket passed by systemd" : cfg->listen);
	return master_run(cfg, fd, inherited);
}
