/*
 * tenant.c - callstopctl tenant add|list, and the tenant helpers demo and key
 * share (ctl.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl/ctl.h"

int ctl_check_id(const char *cmd, const char *what, const char *s)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			break;
	if (len == 0 || len > CTL_ID_MAX || i < len) {
		ctl_error(cmd, "%s '%s': expected 1..%d visible ASCII characters", what, s, CTL_ID_MAX);
		return -1;
	}
	return 0;
}

/* A new workspace id: "ws_" + 20 of [a-z0-9]. */
static int ctl_workspace_id_generate(const char *cmd, char *out, size_t outlen)
{
	char body[21];

	if (ctl_random_chars(body, 20, "abcdefghijklmnopqrstuvwxyz0123456789") < 0) {
		ctl_error(cmd, "the random number generator failed");
		return -1;
	}
	snprintf(out, outlen, "ws_%s", body);
	return 0;
}

/* Report a unique violation on tenants in the operator's words. */
static void ctl_tenant_insert_error(const char *cmd, PGconn *conn, const PGresult *res, const char *name,
				    const char *workspace_id)
{
	const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	if (!ctl_sqlstate_is(res, "23505") || constraint == NULL)
		ctl_db_error(cmd, conn, res, "cannot create the tenant");
	else if (strcmp(constraint, "tenants_name_key") == 0)
		ctl_error(cmd, "a tenant named '%s' already exists", name);
	else if (strcmp(constraint, "tenants_workspace_id_key") == 0)
		ctl_error(cmd, "workspace id '%s' is already used by another tenant", workspace_id);
	else
		ctl_db_error(cmd, conn, res, "cannot create the tenant");
}

int ctl_tenant_ensure(const char *cmd, PGconn *conn, const char *name, const char *workspace_id, char *id,
		      size_t idlen, int *created)
{
	const char *params[2] = { name, workspace_id };
	PGresult *res;

	if (ctl_check_id(cmd, "workspace id", workspace_id) < 0)
		return -1;
	res = ctl_stmt_run(conn, CTL_TENANT_ENSURE, 2, params, NULL, NULL);
	if (!ctl_result_ok(res)) {
		ctl_tenant_insert_error(cmd, conn, res, name, workspace_id);
		PQclear(res);
		return -1;
	}
	*created = PQntuples(res) == 1;
	if (!*created) {
		PQclear(res);
		res = ctl_exec(cmd, conn, CTL_TENANT_ID, 1, params);
		if (res == NULL)
			return -1;
		if (PQntuples(res) != 1) {
			ctl_error(cmd, "tenant '%s' vanished while it was being created", name);
			PQclear(res);
			return -1;
		}
	}
	snprintf(id, idlen, "%s", ctl_value(res, 0, "id"));
	PQclear(res);
	return 0;
}

int ctl_tenant_id(const char *cmd, PGconn *conn, const char *name, char *id, size_t idlen)
{
	const char *params[1] = { name };
	PGresult *res = ctl_exec(cmd, conn, CTL_TENANT_ID, 1, params);

	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		ctl_error(cmd, "no tenant named '%s' (see %s tenant list)", name, CTL_PROG);
		PQclear(res);
		return -1;
	}
	snprintf(id, idlen, "%s", ctl_value(res, 0, "id"));
	PQclear(res);
	return 0;
}

static int ctl_tenant_add(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "tenant add", *workspace_id = NULL, *name;
	const char *params[2];
	char generated[32];
	PGresult *res;
	PGconn *conn;
	int first;

	first = ctl_one_option(cmd, "workspace-id", &workspace_id, argc, argv);
	if (first < 0)
		return CTL_EXIT_USAGE;
	if (argc - first != 1) {
		ctl_error(cmd, "expected one tenant NAME (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	name = argv[first];
	if (*name == '\0') {
		ctl_error(cmd, "the tenant name must not be empty");
		return CTL_EXIT_USAGE;
	}
	if (workspace_id == NULL) {
		if (ctl_workspace_id_generate(cmd, generated, sizeof(generated)) < 0)
			return CTL_EXIT_ERROR;
		workspace_id = generated;
	}
	if (ctl_check_id(cmd, "workspace id", workspace_id) < 0)
		return CTL_EXIT_USAGE;

	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	params[0] = name;
	params[1] = workspace_id;
	res = ctl_stmt_run(conn, CTL_TENANT_ADD, 2, params, NULL, NULL);
	if (!ctl_result_ok(res)) {
		ctl_tenant_insert_error(cmd, conn, res, name, workspace_id);
		PQclear(res);
		PQfinish(conn);
		return CTL_EXIT_ERROR;
	}
	printf("%s\n", ctl_value(res, 0, "id"));
	PQclear(res);
	PQfinish(conn);
	return CTL_EXIT_OK;
}

static int ctl_tenant_list(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_list("tenant list", CTL_TENANT_LIST, g, argc, argv);
}

int ctl_cmd_tenant(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = { { "add", ctl_tenant_add }, { "list", ctl_tenant_list } };

	return ctl_subcommand("tenant", "add or list", subs, sizeof(subs) / sizeof(subs[0]), g, argc, argv);
}
