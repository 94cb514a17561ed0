/*
 * key.c - callstopctl key and admin-token create|list|revoke.  The two are
 * one kind of secret with different owners (struct ctl_token_kind): a random
 * token from common/auth.c, of which only the SHA-256 and the first 8
 * characters are stored.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "common/auth.h"
#include "ctl/ctl.h"

/* What differs between the two kinds of secret callstopctl issues. */
struct ctl_token_kind {
	const char *noun;   /* "key" */
	const char *prefix; /* AUTH_KEY_PREFIX */
	/* $1 owner, $2 SHA-256 (bytea), $3 prefix[, $4 frontend id] -> id;
	 * no row when the owner does not exist. */
	enum ctl_stmt insert;
	/* $1 id -> description ("of tenant acme (frontend fe-1)"), one row
	 * when it was revoked now. */
	enum ctl_stmt revoke;
	/* $1 id -> revoked_at, no row when there is no such id. */
	enum ctl_stmt revoked_at;
};

static const struct ctl_token_kind ctl_api_key = {
	"key", AUTH_KEY_PREFIX, CTL_KEY_INSERT, CTL_KEY_REVOKE, CTL_KEY_REVOKED_AT,
};

static const struct ctl_token_kind ctl_admin_token = {
	"admin token", AUTH_ADMIN_PREFIX, CTL_ADMIN_INSERT, CTL_ADMIN_REVOKE, CTL_ADMIN_REVOKED_AT,
};

/*
 * Store a new token's hash and print the token, in one transaction
 * committed only after the token reached stdout: a token that could not be
 * shown must not exist.  frontend_id: NULL for admin tokens.  Its id goes
 * into id (idlen bytes).  Returns 0, 1 if the owner does not exist (not
 * reported), or -1 (reported).
 */
static int ctl_token_store(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind,
			   const char *token, const char *owner, const char *frontend_id, char *id,
			   size_t idlen)
{
	uint8_t hash[AUTH_HASH_LEN];
	char prefix[9];
	const char *params[4] = { owner, (const char *)hash, prefix, frontend_id };
	const int lengths[4] = { 0, AUTH_HASH_LEN, 0, 0 };
	const int formats[4] = { 0, 1, 0, 0 }; /* bytea in binary: no escaping */
	PGresult *res;
	int rc = -1;

	if (auth_hash(token, hash) < 0) {
		ctl_error(cmd, "cannot hash the %s (SHA-256 failed)", kind->noun);
		return -1;
	}
	/* "csk_" and 4 characters: enough to tell keys apart, too few to
	 * help guess one. */
	snprintf(prefix, sizeof(prefix), "%.8s", token);
	if (ctl_command(cmd, conn, CTL_BEGIN) < 0)
		return -1;
	res = ctl_stmt_run(conn, kind->insert, frontend_id ? 4 : 3, params, lengths, formats);
	if (!ctl_result_ok(res)) {
		ctl_db_error(cmd, conn, res, "cannot store it");
		goto out;
	}
	if (PQntuples(res) != 1) {
		rc = 1;
		goto out;
	}
	snprintf(id, idlen, "%s", ctl_value(res, 0, "id"));
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
		ctl_error(cmd, "cannot write the %s to stdout: %s; none was created", kind->noun,
			  strerror(errno));
		goto out;
	}
	PQclear(res);
	if (ctl_command(cmd, conn, CTL_COMMIT) < 0) {
		ctl_error(cmd, "the %s printed above was NOT stored; discard it", kind->noun);
		return -1;
	}
	return 0;
out:
	PQclear(res);
	ctl_rollback(conn);
	return rc;
}

/* Generate a token of kind and store it (see ctl_token_store). */
static int ctl_token_issue(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind,
			   const char *owner, const char *frontend_id, char *id, size_t idlen)
{
	char token[AUTH_TOKEN_LEN + 1];
	int rc;

	if (auth_token_generate(kind->prefix, token) < 0) {
		ctl_error(cmd, "the random number generator failed");
		return -1;
	}
	rc = ctl_token_store(cmd, conn, kind, token, owner, frontend_id, id, idlen);
	/* It is in stdout's buffer by now, but need not linger in ours. */
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

static int ctl_key_create(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "frontend-id", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "key create", *tenant = NULL, *frontend_id = NULL;
	char id[32];
	PGconn *conn;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'f':
			frontend_id = optarg;
			break;
		default:
			ctl_getopt_error(cmd, c, argv);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc || tenant == NULL || frontend_id == NULL) {
		ctl_error(cmd, "expected --tenant NAME --frontend-id FID (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_id(cmd, "frontend id", frontend_id) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	rc = ctl_token_issue(cmd, conn, &ctl_api_key, tenant, frontend_id, id, sizeof(id));
	if (rc == 1)
		ctl_error(cmd, "no tenant named '%s' (see %s tenant list)", tenant, CTL_PROG);
	else if (rc == 0)
		fprintf(stderr,
			"created key %s for tenant %s (frontend %s); it is shown only once, store it now\n",
			id, tenant, frontend_id);
	PQfinish(conn);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static int ctl_key_list(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "key list", *tenant = NULL;
	const char *params[1] = { NULL };
	char tenant_id[32];
	PGresult *res = NULL;
	PGconn *conn;

	if (ctl_no_operands(cmd, ctl_one_option(cmd, "tenant", &tenant, argc, argv), argc, argv) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	if (tenant == NULL || ctl_tenant_id(cmd, conn, tenant, tenant_id, sizeof(tenant_id)) == 0) {
		params[0] = tenant ? tenant_id : NULL;
		res = ctl_exec(cmd, conn, CTL_KEY_LIST, 1, params);
	}
	if (res != NULL)
		ctl_print_table(res);
	PQclear(res);
	PQfinish(conn);
	return res ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

/* Why token id of kind could not be revoked: no such id, or it already was. */
static void ctl_token_revoke_error(const char *cmd, PGconn *conn, const struct ctl_token_kind *kind,
				   const char *id)
{
	const char *params[1] = { id };
	PGresult *res = ctl_exec(cmd, conn, kind->revoked_at, 1, params);

	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		ctl_error(cmd, "no %s with id %s", kind->noun, id);
	else
		ctl_error(cmd, "%s %s was already revoked at %s", kind->noun, id,
			  ctl_value(res, 0, "revoked_at"));
	PQclear(res);
}

/* "<kind> revoke ID" (argv[0] is "revoke"). */
static int ctl_token_revoke(const char *cmd, const struct ctl_global *g, const struct ctl_token_kind *kind,
			    int argc, char **argv)
{
	const char *params[1];
	long long id;
	PGresult *res;
	PGconn *conn;
	int rc = CTL_EXIT_ERROR;

	if (argc != 2) {
		ctl_error(cmd, "expected one ID (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	if (ctl_parse_int(cmd, "ID", argv[1], 1, INT64_MAX, &id) < 0)
		return CTL_EXIT_USAGE;
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	params[0] = argv[1];
	res = ctl_exec(cmd, conn, kind->revoke, 1, params);
	if (res != NULL && PQntuples(res) == 1) {
		printf("revoked %s %lld %s\n", kind->noun, id, ctl_value(res, 0, "description"));
		rc = CTL_EXIT_OK;
	} else if (res != NULL) {
		ctl_token_revoke_error(cmd, conn, kind, argv[1]);
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_key_revoke(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_token_revoke("key revoke", g, &ctl_api_key, argc, argv);
}

int ctl_cmd_key(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "create", ctl_key_create },
		{ "list", ctl_key_list },
		{ "revoke", ctl_key_revoke },
	};

	return ctl_subcommand("key", "create, list or revoke", subs, sizeof(subs) / sizeof(subs[0]), g, argc,
			      argv);
}

static int ctl_admin_create(const struct ctl_global *g, int argc, char **argv)
{
	const char *cmd = "admin-token create", *name = "admin";
	char id[32];
	PGconn *conn;
	int first, rc;

	first = ctl_one_option(cmd, "name", &name, argc, argv);
	if (first < 0)
		return CTL_EXIT_USAGE;
	if (first != argc || *name == '\0') {
		ctl_error(cmd, "expected [--name NAME] (see %s --help)", CTL_PROG);
		return CTL_EXIT_USAGE;
	}
	conn = ctl_connect(cmd, g);
	if (conn == NULL)
		return CTL_EXIT_ERROR;
	rc = ctl_token_issue(cmd, conn, &ctl_admin_token, name, NULL, id, sizeof(id));
	if (rc == 0)
		fprintf(stderr, "created admin token %s (%s); it is shown only once, store it now\n", id,
			name);
	PQfinish(conn);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static int ctl_admin_list(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_list("admin-token list", CTL_ADMIN_LIST, g, argc, argv);
}

static int ctl_admin_revoke(const struct ctl_global *g, int argc, char **argv)
{
	return ctl_token_revoke("admin-token revoke", g, &ctl_admin_token, argc, argv);
}

int ctl_cmd_admin_token(const struct ctl_global *g, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "create", ctl_admin_create },
		{ "list", ctl_admin_list },
		{ "revoke", ctl_admin_revoke },
	};

	return ctl_subcommand("admin-token", "create, list or revoke", subs, sizeof(subs) / sizeof(subs[0]),
			      g, argc, argv);
}
