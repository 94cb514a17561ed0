/*
 * migrate.c - callstopctl migrate: apply sql/NNN_name.sql in order, each in
 * its own transaction under an advisory lock, recorded in schema_migrations;
 * and the schema questions check asks too (ctl.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl/ctl.h"

/* Any constant both migrates agree on; "callstop" in ASCII. */
#define CTL_MIGRATE_LOCK_KEY "7161124095545077616"

void ctl_migrations_free(struct ctl_migrations *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->v[i].name);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* The version of a migration file name "NNN_name.sql", or -1 if name is not
 * one (editor backups, READMEs). */
static int ctl_migration_version(const char *name)
{
	size_t digits = strspn(name, "0123456789"), len = strlen(name);
	long v;

	if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 6 ||
	    strcmp(name + len - 4, ".sql") != 0)
		return -1;
	v = strtol(name, NULL, 10);
	return v > 0 ? (int)v : -1;
}

static int ctl_migration_cmp(const void *a, const void *b)
{
	const struct ctl_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

int ctl_migrations_scan(const char *cmd, const char *dir, struct ctl_migrations *m)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0, i;

	m->v = NULL;
	m->n = 0;
	if (d == NULL) {
		ctl_error(cmd, "cannot read migrations directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int version = ctl_migration_version(de->d_name);

		if (version < 0)
			continue;
		if (m->n == cap) {
			struct ctl_migration *nv = realloc(m->v, (cap ? cap * 2 : 16) * sizeof(*nv));

			if (nv == NULL)
				goto nomem;
			m->v = nv;
			cap = cap ? cap * 2 : 16;
		}
		m->v[m->n].name = strdup(de->d_name);
		if (m->v[m->n].name == NULL)
			goto nomem;
		m->v[m->n++].version = version;
	}
	closedir(d);
	if (m->n == 0) {
		ctl_error(cmd, "no migrations (NNN_name.sql) in %s", dir);
		return -1;
	}
	qsort(m->v, m->n, sizeof(*m->v), ctl_migration_cmp);
	for (i = 1; i < m->n; i++) {
		if (m->v[i].version == m->v[i - 1].version) {
			ctl_error(cmd, "%s and %s in %s have the same version", m->v[i - 1].name,
				  m->v[i].name, dir);
			ctl_migrations_free(m);
			return -1;
		}
	}
	return 0;
nomem:
	closedir(d);
	ctl_migrations_free(m);
	ctl_error(cmd, "out of memory");
	return -1;
}

/* The whole file at dir/name, NUL-terminated (free it), or NULL (reported). */
static char *ctl_read_file(const char *cmd, const char *dir, const char *name)
{
	char path[PATH_MAX];
	char *buf = NULL;
	long size;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		ctl_error(cmd, "%s/%s: path too long", dir, name);
		return NULL;
	}
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	buf = malloc((size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	buf[size] = '\0';
	fclose(f);
	return buf;
fail:
	ctl_error(cmd, "cannot read %s: %s", path, errno ? strerror(errno) : "short read");
	free(buf);
	if (f != NULL)
		fclose(f);
	return NULL;
}

/* Line (1-based) of the character at 1-based position pos of a UTF-8 text:
 * the server counts characters, not bytes. */
static long ctl_line_of(const char *text, long pos)
{
	long line = 1, chars = 0;

	for (; *text != '\0' && chars < pos - 1; text++) {
		if (((unsigned char)*text & 0xc0) != 0x80)
			chars++;
		if (*text == '\n')
			line++;
	}
	return line;
}

/* Report a failed migration file, with the line of the error when the server
 * gives its position. */
static void ctl_migration_error(const char *cmd, PGconn *conn, const PGresult *res, const char *name,
				const char *sql)
{
	const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	char what[PATH_MAX + 32];

	if (pos != NULL)
		snprintf(what, sizeof(what), "%s: line %ld", name, ctl_line_of(sql, atol(pos)));
	else
		snprintf(what, sizeof(what), "%s", name);
	ctl_db_error(cmd, conn, res, what);
}

/* Serialises migrates for the rest of the transaction. */
static int ctl_migrate_lock(const char *cmd, PGconn *conn)
{
	const char *params[1] = { CTL_MIGRATE_LOCK_KEY };
	PGresult *res = ctl_exec(cmd, conn, CTL_MIGRATE_LOCK, 1, params);

	PQclear(res);
	return res ? 0 : -1;
}

static int ctl_migrate_prepare(const char *cmd, PGconn *conn)
{
	if (ctl_command(cmd, conn, CTL_BEGIN) < 0)
		return -1;
	if (ctl_migrate_lock(cmd, conn) < 0 || ctl_command(cmd, conn, CTL_MIGRATIONS_CREATE) < 0 ||
	    ctl_command(cmd, conn, CTL_COMMIT) < 0) {
		ctl_rollback(conn);
		return -1;
	}
	return 0;
}

/*
 * Decide, under the lock, whether m is still to be applied: 1 yes, 0 no
 * (another migrate did it meanwhile), -1 error (reported; refusing a file
 * older than the newest applied one, which was written against a schema
 * that no longer exists).
 */
static int ctl_migration_pending(const char *cmd, PGconn *conn, const struct ctl_migration *m)
{
	char version[16];
	const char *params[1] = { version };
	PGresult *res;
	int applied, newest, rc;

	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_exec(cmd, conn, CTL_MIGRATION_STATE, 1, params);
	if (res == NULL)
		return -1;
	applied = atoi(ctl_value(res, 0, "applied"));
	newest = atoi(ctl_value(res, 0, "newest"));
	PQclear(res);
	if (applied)
		rc = 0;
	else if (newest > m->version) {
		ctl_error(
			cmd,
			"%s is not applied but the schema is at version %d; refusing to apply it out of order",
			m->name, newest);
		rc = -1;
	} else
		rc = 1;
	return rc;
}

/* Apply one file in its own transaction.  Returns 1 applied, 0 already
 * applied, -1 error (reported, rolled back). */
static int ctl_migration_apply(const char *cmd, PGconn *conn, const char *dir, const struct ctl_migration *m)
{
	char version[16];
	const char *params[2] = { version, m->name };
	PGresult *res;
	char *sql;
	int rc;

	if (ctl_command(cmd, conn, CTL_BEGIN) < 0)
		return -1;
	if (ctl_migrate_lock(cmd, conn) < 0 || (rc = ctl_migration_pending(cmd, conn, m)) < 0)
		goto fail;
	if (rc == 0) {
		ctl_rollback(conn);
		return 0;
	}
	sql = ctl_read_file(cmd, dir, m->name);
	if (sql == NULL)
		goto fail;
	/* PQexec, not PQexecParams: a file holds many statements. */
	res = PQexec(conn, sql);
	if (!ctl_result_ok(res)) {
		ctl_migration_error(cmd, conn, res, m->name, sql);
		PQclear(res);
		free(sql);
		goto fail;
	}
	PQclear(res);
	free(sql);
	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_exec(cmd, conn, CTL_MIGRATION_RECORD, 2, params);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (ctl_command(cmd, conn, CTL_COMMIT) < 0)
		goto fail;
	return 1;
fail:
	ctl_rollback(conn);
	return -1;
}

int ctl_schema_version(const char *cmd, PGconn *conn, int *version)
{
	PGresult *res = ctl_exec(cmd, conn, CTL_SCHEMA_MIGRATED, 0, NULL);
	int exists;

	if (res == NULL)
		return -1;
	exists = strcmp(ctl_value(res, 0, "migrated"), "t") == 0;
	PQclear(res);
	*version = -1;
	if (!exists)
		return 0;
	res = ctl_exec(cmd, conn, CTL_SCHEMA_VERSION, 0, NULL);
	if (res == NULL)
		return -1;
	*version = atoi(ctl_value(res, 0, "version"));
	PQclear(res);
	return 0;
}

int ctl_migrations_missing(const char *cmd, PGconn *conn, const struct ctl_migrations *m, size_t *missing,
			   const char **first)
{
	PGresult *res = ctl_exec(cmd, conn, CTL_SCHEMA_APPLIED, 0, NULL);
	size_t i;
	int r, found, col;

	if (res == NULL)
		return -1;
	col = ctl_column(res, "version");
	*missing = 0;
	*first = NULL;
	for (i = 0; i < m->n; i++) {
		found = 0;
		for (r = 0; r < PQntuples(res) && !found; r++)
			found = atoi(PQgetvalue(res, r, col)) == m->v[i].version;
		if (!found && (*missing)++ == 0)
			*first = m->v[i].name;
	}
	PQclear(res);
	return 0;
}

int ctl_cmd_migrate(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "migrate", *dir = CTL_SQL_DIR;
	struct ctl_migrations m;
	PGconn *conn;
	size_t i;
	int rc = 0, applied = 0, version;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "dir", &dir, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_migrations_scan(cmd, dir, &m) < 0)
		return CTL_EXIT_ERROR;
	conn = ctl_connect(cmd, g);
	if (conn == NULL || ctl_migrate_prepare(cmd, conn) < 0) {
		ctl_migrations_free(&m);
		PQfinish(conn);
		return CTL_EXIT_ERROR;
	}
	for (i = 0; i < m.n && rc >= 0; i++) {
		rc = ctl_migration_apply(cmd, conn, dir, &m.v[i]);
		if (rc > 0) {
			printf("applied %s\n", m.v[i].name);
			fflush(stdout);
			applied++;
		}
	}
	if (rc >= 0 && applied == 0) {
		rc = ctl_schema_version(cmd, conn, &version);
		if (rc == 0)
			printf("schema is up to date (version %d)\n", version);
	}
	ctl_migrations_free(&m);
	PQfinish(conn);
	return rc < 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}
