/*
 * check.c - see check.h.
 */
#include "config.h"

#include "pm/check.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "common/clock.h"
#include "common/conf.h"
#include "common/db_schema.h"

/* Seconds a -T connection attempt may take when the conninfo does not say. */
#define CHECK_CONNECT_TIMEOUT "5"

static int check_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int check_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("callstopd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int check_conninfo(const char *conninfo)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	size_t n;

	if (opts != NULL) {
		PQconninfoFree(opts);
		return 0;
	}
	n = msg != NULL ? strcspn(msg, "\n") : 0;
	check_fail("database: not a libpq connection string: %.*s", (int)n,
		   msg != NULL ? msg : "out of memory");
	PQfreemem(msg);
	return -1;
}

/* An http(s) URL with a host, as libcurl will read it. */
static int check_url(const char *key, const char *url)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	int rc = 0;

	if (url == NULL)
		return 0; /* the handle only once there is a URL to read */
	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = check_fail("%s = %s: not a URL", key, url);
	else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
		rc = check_fail("%s = %s: the scheme must be https (or http)", key, url);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* The log file can be opened for appending: it, or its directory, writable. */
static int check_log_file(const char *file)
{
	char dir[PATH_MAX];

	if (file == NULL)
		return 0;
	if (access(file, F_OK) == 0)
		return access(file, W_OK) == 0
			       ? 0
			       : check_fail("log_file %s: cannot write: %s", file, strerror(errno));
	snprintf(dir, sizeof(dir), "%s", file);
	if (access(dirname(dir), W_OK | X_OK) < 0)
		return check_fail("log_file %s: cannot create it in %s: %s", file, dir, strerror(errno));
	return 0;
}

/* -T: the database answers and has every migration. */
static int check_database(const char *conninfo)
{
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { CHECK_CONNECT_TIMEOUT, conninfo, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	int seen = -1, rc = -1;

	if (PQstatus(conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(conn);

		check_fail("database: cannot connect: %.*s", (int)strcspn(msg, "\n"), msg);
	} else if (db_schema_check(conn, clock_monotonic_ms() + 10000, &seen) == 0) {
		fprintf(stderr, "callstopd: database: %s on %s, schema at %d (this callstopd needs %d)\n",
			PQdb(conn), PQhost(conn), seen, db_schema_needed());
		rc = 0;
	} /* else logged by db_schema_check(), in the words the service logs */
	PQfinish(conn);
	return rc;
}

static int check_loaded(const char *path, int connect)
{
	char err[1024];
	struct conf *cfg = conf_load(path, err, sizeof(err));
	int bad = 0;

	if (cfg == NULL) {
		check_fail("%s", err);
		return -1;
	}
	bad |= check_conninfo(cfg->database);
	if (cfg->listen_group != NULL && getgrnam(cfg->listen_group) == NULL)
		bad |= check_fail("listen_group %s: no such group", cfg->listen_group);
	bad |= check_log_file(cfg->log_file);
	bad |= check_url("[livekit] url", cfg->livekit_url);
	bad |= check_url("[openai] base_url", cfg->openai_base_url);
	if (!bad && connect)
		bad |= check_database(cfg->database);
	conf_free(cfg);
	return bad ? -1 : 0;
}

/* Become user (as root): groups, gid, uid.  0, or -1 (reported). */
static int check_become(const char *user)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL)
		return check_fail("user %s: %s", user, errno != 0 ? strerror(errno) : "no such user");
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return check_fail("user %s: cannot become it: %s", user, strerror(errno));
	fprintf(stderr, "callstopd: checking as user %s, as callstopd will run\n", user);
	return 0;
}

/* Root with `user` set: the checks again in a child that is that user. */
static int check_as_user(const char *path, int connect, const char *user)
{
	pid_t pid;
	int status;

	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return check_fail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(check_become(user) == 0 && check_loaded(path, connect) == 0 ? 0 : 1);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return check_fail("waitpid: %s", strerror(errno));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int check_config(const char *path, int connect)
{
	char err[1024], *user = NULL;
	struct conf *cfg;
	int rc;

	if (geteuid() == 0 && (cfg = conf_load(path, err, sizeof(err))) != NULL) {
		if (cfg->user != NULL && (user = strdup(cfg->user)) == NULL)
			check_fail("out of memory");
		conf_free(cfg);
	}
	rc = user != NULL ? check_as_user(path, connect, user) : check_loaded(path, connect);
	free(user);
	fprintf(stderr, "callstopd: configuration file %s test %s\n", path,
		rc == 0 ? "is successful" : "failed");
	return rc == 0 ? 0 : 1;
}
