/*
 * callstopctl - the admin CLI of callstop: schema migrations, tenants, API
 * keys, the termination outbox, demo data and a health check
 * (callstopctl(8)).  This file: the global options, the usage and the
 * command table; each command group lives in a file of its own (ctl.h).
 *
 * Every command parses its arguments before it connects, so a usage error
 * never waits for the database.  Values reach PostgreSQL only as statement
 * parameters, and every statement is in stmt.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "ctl/ctl.h"

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-c CONFIG] [-d CONNINFO] COMMAND [ARGS]\n"
		"       %s -h | -v\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE        read `database` from FILE (default $CALLSTOP_CONF,\n"
		"                           else %s if it exists)\n"
		"  -d, --database CONNINFO  libpq connection string; wins over the config file\n"
		"                           (with neither, libpq's PGHOST, PGDATABASE, ... apply)\n"
		"  -j, --json               list commands: print the rows as a JSON array\n"
		"  -h, --help               print this help and exit\n"
		"  -v, --version            print the version and exit\n"
		"\n"
		"Commands:\n"
		"  migrate [--dir DIR]      apply DIR/NNN_name.sql in order (default DIR %s)\n"
		"  tenant add NAME [--workspace-id ID]\n"
		"                           create a tenant; prints its id\n"
		"  tenant list              list tenants with their active key counts\n"
		"  key create --tenant NAME --frontend-id FID\n"
		"                           create an API key; prints it, once, on stdout\n"
		"  key list [--tenant NAME] list API keys (prefixes only)\n"
		"  key revoke ID            revoke an API key\n"
		"  admin-token create [--name NAME]\n"
		"                           create an admin token (name default \"admin\");\n"
		"                           prints it, once, on stdout\n"
		"  admin-token list         list admin tokens (prefixes only)\n"
		"  admin-token revoke ID    revoke an admin token\n"
		"  outbox list [--state pending|sent|done|failed|unknown] [--limit N]\n"
		"                           list termination outbox rows, newest first\n"
		"                           (default limit 100)\n"
		"  outbox retry ID... | --all-failed\n"
		"                           re-queue dead-lettered (failed) rows: pending,\n"
		"                           attempts 0, due now; wakes the retry child\n"
		"  webhook add --tenant NAME --url URL [--events TYPE,...] [--allow-http]\n"
		"                           add a webhook endpoint (https:// unless\n"
		"                           --allow-http); prints its secret, once, on stdout\n"
		"  webhook list             list webhook endpoints (never their secrets)\n"
		"  webhook remove ID        remove an endpoint; its pending deliveries fail\n"
		"  webhook rotate-secret ID [--overlap SECONDS]\n"
		"                           new secret, printed once; the old one also signs\n"
		"                           for SECONDS (default 86400)\n"
		"  webhook test ID          send a webhook.test event to the endpoint\n"
		"  webhook deliveries [--endpoint ID] [--state pending|delivered|failed] [--limit N]\n"
		"                           list deliveries, newest first (default limit 100)\n"
		"  webhook replay EVENT_ID  send an event again (same webhook-id) to its\n"
		"                           enabled endpoints\n"
		"  demo [--tenant NAME] [--workspace-id ID] [--batch-size N]\n"
		"       [--small-batch-size N] [--running N]\n"
		"                           create demo calls and batches (tenant demo,\n"
		"                           ws_demo, 100000, 1000, 20); prints\n"
		"                           \"call ID STATUS\" and \"batch JOB_ID ID ENTRIES STATUS\"\n"
		"                           (for trying callstop; not for production)\n"
		"  suppression add --tenant NAME [--reason TEXT] NUMBER...\n"
		"                           add E.164 numbers to a tenant's do-not-call list,\n"
		"                           cancelling their pending entries (SPEC 12)\n"
		"  suppression remove --tenant NAME NUMBER\n"
		"  suppression list --tenant NAME [--limit N]   (default limit 1000)\n"
		"  suppression import --tenant NAME [--reason TEXT] FILE\n"
		"                           add one number per line of FILE (- for stdin),\n"
		"                           all in one transaction, progress on stderr\n"
		"  check [--dir DIR]        check the config, the database and the schema\n"
		"\n"
		"Exit status: 0 success, 1 error, 2 usage error.\n",
		CTL_PROG, CTL_PROG, CONF_DEFAULT_PATH, CTL_SQL_DIR);
}

/*
 * Make sure fds 0-2 are open before libpq opens its socket: started with
 * stdout closed, the socket would become fd 1 and a printed key would go to
 * the server.  A closed stdin or stderr is replaced by /dev/null; a closed
 * stdout is an error, since what a command prints is its result.
 */
static int ctl_std_fds(const char *cmd)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			return -1; /* nowhere to report it */
		if (fd == 1) {
			ctl_error(cmd, "stdout is closed; it carries the result");
			return -1;
		}
	}
	return 0;
}

static int ctl_dispatch(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub commands[] = {
		{ "migrate", ctl_cmd_migrate }, { "tenant", ctl_cmd_tenant },
		{ "key", ctl_cmd_key },         { "admin-token", ctl_cmd_admin_token },
		{ "demo", ctl_demo },           { "outbox", ctl_cmd_outbox },
		{ "check", ctl_cmd_check },     { "suppression", ctl_cmd_suppression },
		{ "webhook", ctl_cmd_webhook },
	};
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].fn(g, argc, argv);
	ctl_error(argv[0], "unknown command (see %s --help)", CTL_PROG);
	return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "database", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },         { "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'v' },      { NULL, 0, NULL, 0 },
	};
	struct ctl_global g = { NULL, NULL };
	const char *cmd;
	int c, rc;

	opterr = 0;
	/* '+': stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:c:d:hjv", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			g.config_path = optarg;
			break;
		case 'd':
			g.conninfo = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return CTL_EXIT_OK;
		case 'j':
			ctl_output_json(1);
			break;
		case 'v':
			printf("%s (callstop) %s\n", CTL_PROG, PACKAGE_VERSION);
			return CTL_EXIT_OK;
		default:
			ctl_getopt_error("options", c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (ctl_std_fds(cmd) < 0)
		return CTL_EXIT_ERROR;
	rc = ctl_dispatch(&g, argc - optind, argv + optind);
	/* A command that failed has said why; a full disk must not turn a
	 * success into a silent loss of its output. */
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		ctl_error(cmd, "cannot write to stdout: %s", strerror(errno));
		rc = CTL_EXIT_ERROR;
	} else if (ferror(stdout) && rc == CTL_EXIT_OK) {
		ctl_error(cmd, "cannot write to stdout");
		rc = CTL_EXIT_ERROR;
	}
	return rc;
}
