/*
 * check.c - callstopctl check: can callstopd start here?  The config file
 * loads, the database answers, and its schema has every migration of the
 * package (a schema newer than the package is fine).
 */
#include "config.h"

#include <stdio.h>

#include <libpq-fe.h>

#include "common/conf.h"
#include "common/db_schema.h"
#include "ctl/ctl.h"

/* Compare the schema with the migrations of dir.  Returns 0 (up to date, or
 * newer than dir: a package older than its database still runs) or -1
 * (reported). */
static int ctl_check_schema(const char *cmd, PGconn *conn, const char *dir)
{
	struct ctl_migrations m;
	const char *first;
	size_t missing;
	int version, highest, rc = -1;

	if (ctl_migrations_scan(cmd, dir, &m) < 0)
		return -1;
	highest = m.v[m.n - 1].version;
	if (ctl_schema_version(cmd, conn, &version) < 0)
		goto out;
	/* the words callstopd logs (common/db_schema.c) */
	if (version < 0) {
		ctl_error(
			cmd,
			"database schema is at 0 (no schema_migrations table), this callstopd needs %d: run `%s "
			"migrate`",
			db_schema_needed(), CTL_PROG);
		goto out;
	}
	if (ctl_migrations_missing(cmd, conn, &m, &missing, &first) < 0)
		goto out;
	if (missing > 0) {
		ctl_error(
			cmd,
			"database schema is at %d, this callstopd needs %d: run `%s migrate` (%zu migration(s) "
			"of %s not applied, first %s)",
			version, version > db_schema_needed() ? highest : db_schema_needed(), CTL_PROG,
			missing, dir, first);
		goto out;
	}
	if (version > highest)
		printf("schema: version %d (newer than the migrations in %s, which end at %d)\n", version,
		       dir, highest);
	else
		printf("schema: version %d (migrations in %s: %d)\n", version, dir, highest);
	rc = 0;
out:
	ctl_migrations_free(&m);
	return rc;
}

int ctl_cmd_check(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "check", *dir = CTL_SQL_DIR;
	struct conf *conf;
	PGconn *conn;
	int rc;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "dir", &dir, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_load_config(cmd, g, &conf) < 0)
		return CTL_EXIT_ERROR;
	if (conf != NULL)
		printf("config: %s: ok\n", conf->path);
	else
		printf("config: none (%s does not exist)\n", CONF_DEFAULT_PATH);
	conn = ctl_connect_to(cmd, g->conninfo ? g->conninfo : conf ? conf->database : NULL);
	conf_free(conf);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	printf("database: %s on %s, port %s: PostgreSQL %s\n", PQdb(conn), PQhost(conn), PQport(conn),
	       PQparameterStatus(conn, "server_version"));
	rc = ctl_check_schema(cmd, conn, dir);
	PQfinish(conn);
	if (rc < 0)
		return CTL_EXIT_ERROR;
	printf("ok\n");
	return CTL_EXIT_OK;
}
