/*
 * conf_test.c - callstop.conf(5) parsing: defaults, every kind of error with
 * its file:line, quoting and comments, the key table, reload rules.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/conf.h"

static char conf_test_path[64];
static char conf_test_err[1024];

/* Writes text to a fresh temporary file and loads it. */
static struct conf *conf_test_load(const char *text)
{
	size_t len = strlen(text);
	int fd;

	snprintf(conf_test_path, sizeof(conf_test_path), "/tmp/conf_test.XXXXXX");
	fd = mkstemp(conf_test_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	conf_test_err[0] = '\0';
	return conf_load(conf_test_path, conf_test_err, sizeof(conf_test_err));
}

static void conf_test_unlink(void)
{
	unlink(conf_test_path);
}

/* Loading text must fail with an error naming path:line and containing want. */
static void conf_test_fails(const char *text, int line, const char *want)
{
	char where[96];
	struct conf *c;

	c = conf_test_load(text);
	conf_test_unlink();
	if (c != NULL)
		fail_msg("loaded, expected an error containing '%s'", want);
	if (line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", conf_test_path, line);
	else
		snprintf(where, sizeof(where), "%s: ", conf_test_path);
	if (strncmp(conf_test_err, where, strlen(where)) != 0)
		fail_msg("error '%s' does not start with '%s'", conf_test_err, where);
	if (strstr(conf_test_err, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", conf_test_err, want);
}

static void test_defaults(void **state)
{
	struct conf *c = conf_test_load("[callstopd]\ndatabase = dbname=callstop\n");

	conf_test_unlink();
	assert_non_null(c);
	assert_string_equal(c->path, conf_test_path);
	assert_string_equal(c->database, "dbname=callstop");
	assert_int_equal(c->key_cache_ms, 1000);
	assert_string_equal(c->listen, "/run/callstop/callstopd.sock");
	assert_int_equal(c->listen_backlog, 511);
	assert_null(c->listen_group);
	assert_int_equal(c->listen_mode, 0660);
	assert_null(c->log_file);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_int_equal(c->max_body_bytes, 65536);
	assert_int_equal(c->max_resources, 100);
	assert_null(c->pid_file);
	assert_int_equal(c->process_control_timeout, 10);
	assert_int_equal(c->workers, 4);
	assert_true(conf_listen_is_unix(c));
	conf_free(c);
}

static void test_all_keys(void **state)
{
	struct conf *c = conf_test_load("[callstopd]\n"
					"database = host=db dbname=callstop\n"
					"key_cache_ms = 250\n"
					"listen = 127.0.0.1:9000\n"
					"listen_backlog = 128\n"
					"listen_group = www-data\n"
					"listen_mode = 0600\n"
					"log_file = /var/log/callstop/callstopd.log\n"
					"log_level = debug\n"
					"max_body_bytes = 1024\n"
					"max_resources = 7\n"
					"pid_file = /run/callstop/callstopd.pid\n"
					"process_control_timeout = 3\n"
					"workers = 256\n");

	conf_test_unlink();
	assert_non_null(c);
	assert_string_equal(c->database, "host=db dbname=callstop");
	assert_int_equal(c->key_cache_ms, 250);
	assert_string_equal(c->listen, "127.0.0.1:9000");
	assert_int_equal(c->listen_backlog, 128);
	assert_string_equal(c->listen_group, "www-data");
	assert_int_equal(c->listen_mode, 0600);
	assert_string_equal(c->log_file, "/var/log/callstop/callstopd.log");
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(c->max_body_bytes, 1024);
	assert_int_equal(c->max_resources, 7);
	assert_string_equal(c->pid_file, "/run/callstop/callstopd.pid");
	assert_int_equal(c->process_control_timeout, 3);
	assert_int_equal(c->workers, 256);
	assert_false(conf_listen_is_unix(c));
	conf_free(c);
}

static void test_quotes_comments_whitespace(void **state)
{
	struct conf *c = conf_test_load("\xef\xbb\xbf# a comment\r\n"
					"; another one\n"
					"   # indented comment\n"
					"\n"
					"  [ callstopd ]  \n"
					"\tdatabase\t=\t\"host=db password=a#b;c\"  \r\n"
					"log_file = \"\"\n"
					"listen_group = \"say \"hi\"\"\n"
					"pid_file = /run/x=y.pid\n"
					"log_level=warn\n");

	conf_test_unlink();
	assert_non_null(c);
	/* only a comment line is a comment: '#' and ';' in a value are data */
	assert_string_equal(c->database, "host=db password=a#b;c");
	assert_null(c->log_file);
	assert_string_equal(c->listen_group, "say \"hi\"");
	assert_string_equal(c->pid_file, "/run/x=y.pid");
	assert_int_equal(c->log_level, LOG_LEVEL_WARN);
	conf_free(c);
}

static void test_inline_comment_is_not_a_comment(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = 4 # four\n", 3,
			"workers: expected an integer 1..256, got '4 # four'");
}

static void test_unknown_key(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\n\nworker = 4\n", 4,
			"unknown key 'worker' in [callstopd]");
	conf_test_fails("[callstopd]\nWorkers = 4\n", 2, "unknown key 'Workers'");
}

static void test_unknown_section(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\n[callstop]\n", 3, "unknown section [callstop]");
	conf_test_fails("[]\n", 1, "unknown section []");
	conf_test_fails("[callstopd\n", 1, "expected '[section]'");
}

static void test_key_outside_section(void **state)
{
	conf_test_fails("database = x\n[callstopd]\n", 1, "outside any section");
}

static void test_bad_line(void **state)
{
	conf_test_fails("[callstopd]\ndatabase\n", 2, "expected 'key = value'");
	conf_test_fails("[callstopd]\n = x\n", 2, "missing key");
	conf_test_fails("[callstopd]\ndatabase = \"x\n", 2, "database: unterminated quote");
	conf_test_fails("[callstopd]\ndatabase = x\ndatabase = y\n", 3, "database: already set on line 2");
}

static void test_bad_int(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = x\n", 3,
			"workers: expected an integer 1..256, got 'x'");
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = 4x\n", 3, "got '4x'");
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = +4\n", 3, "got '+4'");
	conf_test_fails("[callstopd]\ndatabase = x\nworkers =\n", 3, "got ''");
	conf_test_fails("[callstopd]\ndatabase = x\nmax_body_bytes = 99999999999999999999999\n", 3,
			"max_body_bytes: expected an integer");
}

static void test_out_of_range(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = 0\n", 3,
			"workers: expected an integer 1..256, got '0'");
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = 257\n", 3, "got '257'");
	conf_test_fails("[callstopd]\ndatabase = x\nworkers = -1\n", 3, "got '-1'");
	conf_test_fails("[callstopd]\ndatabase = x\nkey_cache_ms = 1001\n", 3,
			"key_cache_ms: expected an integer 1..1000");
	conf_test_fails("[callstopd]\ndatabase = x\nprocess_control_timeout = 0\n", 3,
			"process_control_timeout");
}

static void test_missing_database(void **state)
{
	conf_test_fails("[callstopd]\nworkers = 2\n", 0, "database: required in [callstopd]");
	conf_test_fails("", 0, "database: required");
	conf_test_fails("[callstopd]\ndatabase =\n", 2, "database: must not be empty");
	conf_test_fails("[callstopd]\ndatabase = \"\"\n", 2, "database: must not be empty");
}

static void test_bad_listen_mode(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nlisten_mode = 0999\n", 3,
			"listen_mode: expected an octal mode 0000..0777, got '0999'");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten_mode = rw-rw----\n", 3, "listen_mode");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten_mode = 01777\n", 3, "got '01777'");
}

static void test_listen_mode_without_zero(void **state)
{
	struct conf *c = conf_test_load("[callstopd]\ndatabase = x\nlisten_mode = 666\n");

	conf_test_unlink();
	assert_non_null(c);
	assert_int_equal(c->listen_mode, 0666);
	conf_free(c);
}

static void test_bad_log_level(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nlog_level = verbose\n", 3,
			"log_level: expected error, warn, info or debug, got 'verbose'");
}

static void test_bad_listen(void **state)
{
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = localhost\n", 3, "listen: expected");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = localhost:0\n", 3, "listen: expected");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = localhost:65536\n", 3, "listen: expected");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = localhost:http\n", 3, "listen: expected");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = ::1:9000\n", 3, "listen: expected");
	conf_test_fails("[callstopd]\ndatabase = x\nlisten = :9000\n", 3, "listen: expected");
	conf_test_fails(
		"[callstopd]\ndatabase = x\nlisten = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
		3, "listen: unix socket path longer than");
}

static void test_missing_file(void **state)
{
	char err[256];

	assert_null(conf_load("/nonexistent/callstop.conf", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/callstop.conf: No such file or directory");
}

static void test_listen_is_unix(void **state)
{
	struct conf c;

	memset(&c, 0, sizeof(c));
	c.listen = "/run/callstop/callstopd.sock";
	assert_true(conf_listen_is_unix(&c));
	c.listen = "./callstopd.sock";
	assert_true(conf_listen_is_unix(&c));
	c.listen = "127.0.0.1:9000";
	assert_false(conf_listen_is_unix(&c));
	c.listen = "[::1]:9000";
	assert_false(conf_listen_is_unix(&c));
	c.listen = "localhost:9000";
	assert_false(conf_listen_is_unix(&c));
}

static void test_listen_split(void **state)
{
	char host[64], port[8];

	assert_int_equal(conf_listen_split("127.0.0.1:9000", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "9000");
	assert_int_equal(conf_listen_split("[::1]:65535", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "65535");
	assert_int_equal(conf_listen_split("*:9000", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "");
	assert_int_equal(conf_listen_split("[::1]9000", host, sizeof(host), port, sizeof(port)), -1);
	assert_int_equal(conf_listen_split("host:", host, sizeof(host), port, sizeof(port)), -1);
	assert_int_equal(conf_listen_split("a-rather-long-host-name:1", host, 8, port, sizeof(port)), -1);
}

static void test_key_table(void **state)
{
	const struct conf_key *k;
	size_t n, i;
	int found = 0;

	k = conf_keys(&n);
	assert_true(n >= 13);
	for (i = 0; i < n; i++) {
		assert_non_null(k[i].section);
		assert_non_null(k[i].name);
		assert_true((k[i].flags & CONF_F_REQUIRED) != 0 || k[i].def != NULL);
		if (i > 0) {
			int cmp = strcmp(k[i - 1].section, k[i].section);

			if (cmp > 0 || (cmp == 0 && strcmp(k[i - 1].name, k[i].name) >= 0))
				fail_msg("key table not sorted at [%s] %s", k[i].section, k[i].name);
		}
		if (strcmp(k[i].section, "callstopd") == 0 &&
		    strcmp(k[i].name, "process_control_timeout") == 0)
			found = 1;
	}
	assert_true(found);
}

static void test_keep_restart_keys(void **state)
{
	struct conf *old, *neu;
	char changed[128];

	old = conf_test_load("[callstopd]\ndatabase = a\nlisten = /tmp/a.sock\nworkers = 2\n");
	conf_test_unlink();
	neu = conf_test_load("[callstopd]\ndatabase = b\nlisten = /tmp/b.sock\nworkers = 3\n"
			     "pid_file = /tmp/p.pid\n");
	conf_test_unlink();
	assert_non_null(old);
	assert_non_null(neu);
	assert_int_equal(conf_keep_restart_keys(neu, old, changed, sizeof(changed)), 2);
	assert_string_equal(changed, "listen, pid_file");
	assert_string_equal(neu->listen, "/tmp/a.sock");
	assert_null(neu->pid_file);
	assert_string_equal(neu->database, "b");
	assert_int_equal(neu->workers, 3);
	assert_int_equal(conf_keep_restart_keys(neu, old, changed, sizeof(changed)), 0);
	assert_string_equal(changed, "");
	conf_free(old);
	conf_free(neu);
}

/* A secret file of size bytes ('k' repeated, then a newline if nl). */
static void conf_test_secret(const char *file, size_t size, int nl)
{
	FILE *f = fopen(file, "w");
	size_t i;

	assert_non_null(f);
	for (i = 0; i < size; i++)
		fputc(i + 1 == size && nl ? '\n' : 'k', f);
	assert_int_equal(fclose(f), 0);
}

/* Issue 10 defect 13: a secret file over 4095 bytes was cut to 4095 and the
 * configuration said OK (callstopd -t too). */
static void test_secret_file_size(void **state)
{
	static const size_t too_big[] = { 4096, 4097, 100000 };
	char secret[64], text[256];
	struct conf *c;
	size_t i;
	int fd;

	(void)state;
	snprintf(secret, sizeof(secret), "/tmp/conf_test_secret.XXXXXX");
	fd = mkstemp(secret);
	assert_true(fd >= 0);
	close(fd);
	snprintf(text, sizeof(text),
		 "[callstopd]\ndatabase = dbname=x\n[livekit]\nurl = http://127.0.0.1:1\n"
		 "api_key = k\napi_secret_file = %s\n",
		 secret);

	conf_test_secret(secret, 4095, 0);
	c = conf_test_load(text);
	conf_test_unlink();
	assert_non_null(c);
	assert_int_equal(strlen(c->livekit_api_secret), 4095);
	conf_free(c);
	conf_test_secret(secret, 4095, 1);
	c = conf_test_load(text);
	conf_test_unlink();
	assert_non_null(c);
	assert_int_equal(strlen(c->livekit_api_secret), 4094);
	conf_free(c);

	for (i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
		conf_test_secret(secret, too_big[i], 1);
		conf_test_fails(text, 0, "is over 4095 bytes");
		assert_non_null(strstr(conf_test_err, secret));
		assert_null(strstr(conf_test_err, "kkkk"));
	}
	conf_test_secret(secret, 0, 0);
	conf_test_fails(text, 0, "is empty or not text");
	unlink(secret);
	conf_test_fails(text, 0, "cannot read secret file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_quotes_comments_whitespace),
		cmocka_unit_test(test_inline_comment_is_not_a_comment),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_bad_line),
		cmocka_unit_test(test_bad_int),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_missing_database),
		cmocka_unit_test(test_bad_listen_mode),
		cmocka_unit_test(test_listen_mode_without_zero),
		cmocka_unit_test(test_bad_log_level),
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_listen_is_unix),
		cmocka_unit_test(test_listen_split),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_keep_restart_keys),
		cmocka_unit_test(test_secret_file_size),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
