/*
 * check.h - callstopd -t and -T: check a configuration file for what bites
 * at start or at the first request, the way nginx -t does (issue 16).
 *
 * Started as root with `user` set, the checks run in a child that has become
 * that user first (groups, gid, uid), so that a file root can read and the
 * user cannot - the configuration itself, a secret file, the log directory,
 * libpq's passfile with -T - fails here rather than in the running service.
 */
#ifndef CALLSTOP_CHECK_H
#define CALLSTOP_CHECK_H

/*
 * Load path and check: the database conninfo parses (PQconninfoParse), the
 * listen_group exists, the log file's directory can be written, the provider
 * URLs are http(s) URLs with a host (curl_url); with connect also that the
 * database answers and its schema is current (common/db_schema.h).  Reports
 * on stderr, the last line "configuration file PATH test is successful" or
 * "... test failed".  Returns the exit status: 0 or 1.
 */
int check_config(const char *path, int connect);

#endif
