#!/usr/bin/perl
# callstopctl, command by command: what each prints and exits with, the
# messages of its errors, and its usage errors (exit 2, one line, nothing
# changed).  With t/96-ctl-outbox.t this runs every statement of
# src/ctl/stmt.c at least once, so a statement or a column name lost there
# fails here.  The demo says in --help that it is not for production.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(nginx_off => 1, callstopd_off => 1);
my $sqldir = "$FindBin::Bin/../sql";
my ($newest) = sort { $b <=> $a } map { m{/(\d+)_[^/]*\.sql$} ? $1 + 0 : () } glob("$sqldir/*.sql");
my $time = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;

sub table ($out) {
	my ($head, @rows) = split /\n/, $out;
	return ([ split ' ', $head ], [ map { [ split /\s{2,}/, s/^\s+//r ] } @rows ]);
}

# Exit code, stdout, and stderr as a list of lines.
sub ctl (@args) {
	my ($rc, $out, $err) = $t->ctl(@args);
	return ($rc, $out, [ split /\n/, $err ]);
}

sub counts () {
	return $t->psql_value('SELECT (SELECT count(*) FROM tenants) || \'/\' || (SELECT count(*) FROM api_keys)'
		. ' || \'/\' || (SELECT count(*) FROM admin_tokens) || \'/\' || (SELECT count(*) FROM voice_call_logs)');
}

subtest '--help' => sub {
	my ($rc, $out, $err) = ctl('--help');
	is($rc, 0, 'exit 0');
	is_deeply($err, [], 'nothing on stderr');
	like($out, qr/^usage: callstopctl \[-c CONFIG\] \[-d CONNINFO\] COMMAND \[ARGS\]$/m, 'usage line');
	for my $cmd ('migrate', 'tenant add', 'tenant list', 'key create', 'key list', 'key revoke',
		'admin-token create', 'admin-token list', 'admin-token revoke', 'outbox list', 'outbox retry',
		'demo', 'check') {
		like($out, qr/^  \Q$cmd\E\b/m, "lists $cmd");
	}
	my ($demo) = $out =~ /^(  demo .*?)^  check/ms;
	like($demo, qr/for trying callstop; not for production/, 'demo: for trying callstop, not for production');
};

subtest 'usage errors: exit 2, one line, nothing changed' => sub {
	my $before = counts();
	my @cases = (
		[ ['nosuch'], 'nosuch: unknown command (see callstopctl --help)' ],
		[ ['migrate', 'extra'], "migrate: unexpected argument 'extra' (see callstopctl --help)" ],
		[ ['migrate', '--bogus'], 'migrate: unknown option --bogus (see callstopctl --help)' ],
		[ ['migrate', '--dir'], 'migrate: option --dir needs a value (see callstopctl --help)' ],
		[ ['tenant'], 'tenant: expected add or list (see callstopctl --help)' ],
		[ ['tenant', 'bogus'], "tenant: unknown subcommand 'bogus' (expected add or list)" ],
		[ ['tenant', 'add'], 'tenant add: expected one tenant NAME (see callstopctl --help)' ],
		[ ['tenant', 'add', ''], 'tenant add: the tenant name must not be empty' ],
		[ ['tenant', 'add', 'x', '--workspace-id', 'a b'],
			"tenant add: workspace id 'a b': expected 1..128 visible ASCII characters" ],
		[ ['tenant', 'list', 'extra'], "tenant list: unexpected argument 'extra' (see callstopctl --help)" ],
		[ ['key'], 'key: expected create, list or revoke (see callstopctl --help)' ],
		[ ['key', 'create', '--tenant', 't'],
			'key create: expected --tenant NAME --frontend-id FID (see callstopctl --help)' ],
		[ ['key', 'create', '--tenant', 't', '--frontend-id', ''],
			"key create: frontend id '': expected 1..128 visible ASCII characters" ],
		[ ['key', 'list', 'extra'], "key list: unexpected argument 'extra' (see callstopctl --help)" ],
		[ ['key', 'revoke'], 'key revoke: expected one ID (see callstopctl --help)' ],
		[ ['key', 'revoke', 'x'], "key revoke: ID: expected an integer 1..9223372036854775807, got 'x'" ],
		[ ['admin-token', 'bogus'], "admin-token: unknown subcommand 'bogus' (expected create, list or revoke)" ],
		[ ['admin-token', 'create', '--name', ''], 'admin-token create: expected [--name NAME] (see callstopctl --help)' ],
		[ ['admin-token', 'revoke', '0'], "admin-token revoke: ID: expected an integer 1..9223372036854775807, got '0'" ],
		[ ['outbox'], 'outbox: expected list or retry (see callstopctl --help)' ],
		[ ['check', 'extra'], "check: unexpected argument 'extra' (see callstopctl --help)" ],
		[ ['demo', '--tenant', ''], 'demo: the tenant name must not be empty' ],
		[ ['demo', '--batch-size', '0'], "demo: --batch-size: expected an integer 1..100000000, got '0'" ],
		[ ['demo', '--running', '-1'], "demo: --running: expected an integer 0..100000000, got '-1'" ],
		[ ['demo', 'extra'], "demo: unexpected argument 'extra' (see callstopctl --help)" ],
	);
	for my $case (@cases) {
		my ($args, $msg) = @$case;
		my ($rc, $out, $err) = ctl(@$args);
		is($rc, 2, "@$args: exit 2");
		is($out, '', "@$args: nothing on stdout");
		is_deeply($err, ["callstopctl: $msg"], "@$args: message");
	}
	is(counts(), $before, 'nothing changed');
};

subtest 'migrate and check' => sub {
	my ($rc, $out, $err) = ctl('migrate', '--dir', $sqldir);
	is($rc, 0, 'migrate again: exit 0') or diag("@$err");
	is($out, "schema is up to date (version $newest)\n", 'up to date');
	($rc, $out, $err) = ctl('check', '--dir', $sqldir);
	is($rc, 0, 'check: exit 0') or diag("@$err");
	my @lines = split /\n/, $out;
	is(scalar @lines, 4, 'four lines');
	like($lines[0], qr/^config: /, 'config line');
	like($lines[1], qr/^database: callstop on .*, port \d+: PostgreSQL \d/, 'database line');
	is($lines[2], "schema: version $newest (migrations in $sqldir: $newest)", 'schema line');
	is($lines[3], 'ok', 'ok');
	($rc, $out, $err) = ctl('check', '--dir', "$FindBin::Bin/lib");
	is($rc, 1, 'no migrations in dir: exit 1');
	is_deeply($err, ["callstopctl: check: no migrations (NNN_name.sql) in $FindBin::Bin/lib"], 'message');
};

my ($acme, $key1, $key2);
subtest 'tenant add and list' => sub {
	my ($rc, $out, $err) = ctl('tenant', 'add', 'acme', '--workspace-id', 'ws_acme');
	is($rc, 0, 'add: exit 0') or diag("@$err");
	like($out, qr/^\d+\n\z/, 'prints the id');
	chomp($acme = $out);
	($rc, $out, $err) = ctl('tenant', 'add', 'acme', '--workspace-id', 'ws_other');
	is_deeply([ $rc, $out, $err ], [ 1, '', ["callstopctl: tenant add: a tenant named 'acme' already exists"] ],
		'same name');
	($rc, $out, $err) = ctl('tenant', 'add', 'beta', '--workspace-id', 'ws_acme');
	is_deeply([ $rc, $out, $err ],
		[ 1, '', ["callstopctl: tenant add: workspace id 'ws_acme' is already used by another tenant"] ],
		'same workspace id');
	($rc, $out) = ctl('tenant', 'add', 'gamma');
	is($rc, 0, 'add without a workspace id');
	chomp(my $gamma = $out);
	is($t->psql_value("SELECT workspace_id FROM tenants WHERE id = $gamma") =~ /^ws_[a-z0-9]{20}$/ ? 1 : 0, 1,
		'generated workspace id');
	($rc, $out) = ctl('tenant', 'list');
	is($rc, 0, 'list: exit 0');
	my ($head, $rows) = table($out);
	is_deeply($head, [qw(id name workspace_id keys created_at)], 'columns');
	is_deeply([ map { [ @$_[0 .. 3] ] } @$rows ], [ [ $acme, 'acme', 'ws_acme', 0 ],
		[ $gamma, 'gamma', $t->psql_value("SELECT workspace_id FROM tenants WHERE id = $gamma"), 0 ] ], 'rows');
	like($rows->[0][4], qr/^$time$/, 'created_at RFC 3339 UTC');
};

subtest 'key create, list, revoke' => sub {
	my ($rc, $out, $err) = ctl('key', 'create', '--tenant', 'nobody', '--frontend-id', 'fe1');
	is_deeply([ $rc, $out, $err ],
		[ 1, '', ["callstopctl: key create: no tenant named 'nobody' (see callstopctl tenant list)"] ], 'no tenant');
	($rc, $out, $err) = ctl('key', 'create', '--tenant', 'acme', '--frontend-id', 'fe1');
	is($rc, 0, 'create: exit 0');
	like($out, qr/^csk_\S+\n\z/, 'prints the key');
	my ($prefix) = $out =~ /^(.{8})/;
	like($err->[0], qr/^created key (\d+) for tenant acme \(frontend fe1\); it is shown only once, store it now$/,
		'says which');
	($key1) = $err->[0] =~ /created key (\d+)/;
	($rc, undef, $err) = ctl('key', 'create', '--tenant', 'gamma', '--frontend-id', 'fe2');
	($key2) = $err->[0] =~ /created key (\d+)/;
	($rc, $out) = ctl('key', 'list', '--tenant', 'acme');
	is($rc, 0, 'list --tenant: exit 0');
	my ($head, $rows) = table($out);
	is_deeply($head, [qw(id tenant prefix frontend_id created_at revoked_at)], 'columns');
	is_deeply($rows, [ [ $key1, 'acme', $prefix, 'fe1', $rows->[0][4], '-' ] ], 'only acme\'s key');
	like($rows->[0][4], qr/^$time$/, 'created_at');
	($rc, $out) = ctl('key', 'list');
	is_deeply([ map { $_->[0] } @{ (table($out))[1] } ], [ $key1, $key2 ], 'list: every key');
	($rc, $out, $err) = ctl('key', 'list', '--tenant', 'nobody');
	is_deeply([ $rc, $out, $err ],
		[ 1, '', ["callstopctl: key list: no tenant named 'nobody' (see callstopctl tenant list)"] ], 'no tenant');
	($rc, $out) = ctl('tenant', 'list');
	is((table($out))[1][0][3], 1, 'tenant list counts the key');

	($rc, $out, $err) = ctl('key', 'revoke', $key1);
	is_deeply([ $rc, $out, $err ], [ 0, "revoked key $key1 of tenant acme (frontend fe1)\n", [] ], 'revoke');
	($rc, $out, $err) = ctl('key', 'revoke', $key1);
	is($rc, 1, 'again: exit 1');
	like($err->[0], qr/^callstopctl: key revoke: key $key1 was already revoked at $time$/, 'already revoked');
	($rc, $out, $err) = ctl('key', 'revoke', 999999);
	is_deeply([ $rc, $out, $err ], [ 1, '', ['callstopctl: key revoke: no key with id 999999'] ], 'no such key');
	($rc, $out) = ctl('key', 'list', '--tenant', 'acme');
	like((table($out))[1][0][5], qr/^$time$/, 'revoked_at listed');
};

subtest 'admin-token create, list, revoke' => sub {
	my ($rc, $out, $err) = ctl('admin-token', 'create', '--name', 'ops');
	is($rc, 0, 'create: exit 0');
	like($out, qr/^csa_\S+\n\z/, 'prints the token');
	like($err->[0], qr/^created admin token (\d+) \(ops\); it is shown only once, store it now$/, 'says which');
	my ($id) = $err->[0] =~ /token (\d+)/;
	($rc, $out) = ctl('admin-token', 'list');
	my ($head, $rows) = table($out);
	is_deeply($head, [qw(id name prefix created_at revoked_at)], 'columns');
	is_deeply([ map { [ @$_[0, 1, 4] ] } @$rows ], [ [ $id, 'ops', '-' ] ], 'row');
	($rc, $out, $err) = ctl('admin-token', 'revoke', $id);
	is_deeply([ $rc, $out, $err ], [ 0, "revoked admin token $id (ops)\n", [] ], 'revoke');
	($rc, $out, $err) = ctl('admin-token', 'revoke', $id);
	like($err->[0], qr/^callstopctl: admin-token revoke: admin token $id was already revoked at $time$/,
		'already revoked');
	($rc, $out, $err) = ctl('admin-token', 'revoke', 999999);
	is_deeply([ $rc, $err ], [ 1, ['callstopctl: admin-token revoke: no admin token with id 999999'] ],
		'no such token');
};

subtest 'outbox with no rows' => sub {
	my ($rc, $out) = ctl('outbox', 'list');
	is_deeply([ $rc, $out ],
		[ 0, "id  tenant  call_id  provider  target  state  attempts  next_attempt_at  last_error\n" ], 'empty list');
	my $err;
	($rc, $out, $err) = ctl('outbox', 'retry', 5);
	is_deeply([ $rc, $out, $err ], [ 1, "re-queued 0 outbox row(s)\n", ['callstopctl: outbox retry: no outbox row with id 5'] ],
		'unknown id');
	($rc, $out) = ctl('outbox', 'retry', '--all-failed');
	is_deeply([ $rc, $out ], [ 0, "re-queued 0 outbox row(s)\n" ], '--all-failed, none');
};

subtest 'demo' => sub {
	my @args = ('demo', '--tenant', 'demo', '--batch-size', 30, '--small-batch-size', 20, '--running', 2);
	my ($rc, $out, $err) = ctl(@args);
	is($rc, 0, 'exit 0') or diag("@$err");
	my @lines = split /\n/, $out;
	my @calls = grep { /^call / } @lines;
	is(scalar @calls, 18, '18 calls');
	like($_, qr/^call [0-9a-f-]{36} [a-z_]+$/, 'call line') for $calls[0];
	is_deeply([ map { (split ' ')[2] } @calls[0 .. 13] ], [qw(initiated connecting ringing running completed
		ended cancelled failed error declined rejected busy no_answer not_reachable)], 'every call state');
	my @batches = grep { /^batch / } @lines;
	is(scalar @lines, 20, 'nothing else on stdout');
	like($batches[0], qr/^batch batch-demo-small-[0-9a-f]{8} [0-9a-f-]{36} 20 processing$/, 'small batch');
	like($batches[1], qr/^batch batch-demo-large-[0-9a-f]{8} [0-9a-f-]{36} 30 pending$/, 'large batch');
	like($err->[0], qr/^created tenant demo \(id \d+\)$/, 'created the tenant');
	is($t->psql_value("SELECT count(*) FROM voice_call_logs c JOIN voice_call_batch_entries e"
		. " ON e.call_log_id = c.id WHERE c.status = 'running'"), 2, 'two batch calls running');
	($rc, $out, $err) = ctl(@args);
	is($rc, 0, 'again: exit 0');
	like($err->[0], qr/^using existing tenant demo \(id \d+\)$/, 'uses the tenant');
	($rc, $out, $err) = ctl('demo', '--tenant', 'demo2', '--workspace-id', 'ws_acme', '--batch-size', 1);
	is_deeply([ $rc, $out, $err ],
		[ 1, '', ["callstopctl: demo: workspace id 'ws_acme' is already used by another tenant"] ], 'taken workspace id');
};

done_testing();
