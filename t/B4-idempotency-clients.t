#!/usr/bin/perl
# SPEC 8 from the clients of t/83 (t/clients/clients.py: Python + requests,
# t/clients/clients.mjs: Node's fetch) given an Idempotency-Key header
# (IDEMPOTENCY_KEY): their cancel-with-retry still works, and with the key a
# retry after a timeout gets the first attempt's answer (200 "Call cancelled
# successfully", a replay) instead of 400 "Cannot cancel call with status:
# cancelled"; an attempt answered 409 idempotency_key_in_flight is asked
# again after its Retry-After.  The call is cancelled once.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(q_);
use JSON::PP ();
use POSIX qw(_exit);

# The first attempt of the timeout scenario waits on a row lock held
# scaled(5) s: well inside its statement_timeout, whatever the scale (at the
# default 5 s it would be cancelled, 503, and its retry would run instead of
# being replayed).
my $t = CallstopTest->new(workers => 3, conf => { database_statement_timeout_ms => scaled(30) * 1000 });
my $JSON = JSON::PP->new->canonical;
my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $ca = $t->tmpdir . '/nginx/cert.pem';

sub run_cmd ($cmd, %env) {
	my $dir = $t->tmpdir;
	my ($out, $err) = ("$dir/client.out", "$dir/client.err");
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		delete @ENV{qw(http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY)};
		$ENV{NO_PROXY} = $ENV{no_proxy} = '127.0.0.1,localhost';
		@ENV{ keys %env } = values %env;
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $out) or _exit(126);
		open(STDERR, '>', $err) or _exit(126);
		exec { $cmd->[0] } @$cmd or _exit(127);
	}
	waitpid($pid, 0);
	my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my $slurp = sub ($f) { open(my $fh, '<', $f) or return ''; local $/; return scalar(<$fh>) // '' };
	return ($rc, $slurp->($out), $slurp->($err));
}

my $python;
for my $p ('/usr/bin/python3', 'python3') {
	my ($rc) = run_cmd([ $p, '-c', 'import requests' ]);
	if ($rc == 0) { $python = $p; last }
}
my ($node_rc) = run_cmd([ 'node', '-e', 'process.exit(typeof fetch === "function" ? 0 : 1)' ]);
my @CLIENTS = (
	{ name => 'python', cmd => [ $python // 'python3', "$FindBin::Bin/clients/clients.py" ],
		missing => $python ? undef : 'python3 with requests (Debian: python3-requests) not installed' },
	{ name => 'node', cmd => [ 'node', "$FindBin::Bin/clients/clients.mjs" ],
		missing => $node_rc == 0 ? undef : 'node with a built-in fetch (Node 18+) not installed' },
);
my %BASE_ENV = (CALLSTOP_BASE_URL => $t->base_url, CALLSTOP_CA => $ca, NODE_EXTRA_CA_CERTS => $ca,
	CALLSTOP_API_KEY => $key, CALLSTOP_WORKSPACE_ID => 'ws_acme');

sub client_ok ($client, $scenario, %env) {
	my ($rc, $out, $err) = run_cmd([ @{ $client->{cmd} }, $scenario ], %BASE_ENV, %env);
	is($rc, 0, "$client->{name} $scenario: exit 0") or diag("stdout:\n$out\nstderr:\n$err");
	my ($last) = reverse grep { length } split /\n/, $out;
	return eval { $JSON->decode($last // '') } // {};
}

sub insert_call () {
	return $t->psql_value("INSERT INTO voice_call_logs (tenant_id, to_number, status) VALUES ($acme,"
		. " '+15550000000', 'running') RETURNING id");
}

sub history_count ($id) { return $t->psql_value("SELECT count(*) FROM cancel_history WHERE call_id = '$id'") }

# Hold a call's row for $secs in another session.
sub lock_row ($id, $secs) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>', '/dev/null');
		exec('psql', '-X', '-q', '-d', $t->conninfo, '-c',
			"BEGIN; SELECT 1 FROM voice_call_logs WHERE id = '$id' FOR UPDATE; SELECT pg_sleep($secs); COMMIT;")
			or _exit(127);
	}
	$t->wait_until(sub { $t->psql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0 },
		timeout => 5) or die 'the row lock was not taken';
	return $pid;
}

for my $client (@CLIENTS) {
	my $n = $client->{name};
	SKIP: {
		skip "$n: $client->{missing}", 2 if $client->{missing};

		subtest "$n: cancel with a key, at once" => sub {
			my $id = insert_call();
			my $s = client_ok($client, 'cancel-retry', CALL_ID => $id, FIRST_TIMEOUT_MS => 5000,
				TIMEOUT_MS => 5000, EXPECT_FIRST_TIMEOUT => 0, IDEMPOTENCY_KEY => "b4-$n-1");
			is_deeply($s->{attempts}, [ { status => 200 } ], 'one attempt, 200');
			is(history_count($id), 1, 'cancelled once');
		};

		subtest "$n: the first attempt times out inside callstopd; the retry gets its answer" => sub {
			my $id = insert_call();
			# the first attempt reaches callstopd, claims the key and waits
			# for the row; the client gives up on it after 2 s
			my $locker = lock_row($id, scaled(5));
			my $s = client_ok($client, 'cancel-retry', CALL_ID => $id, FIRST_TIMEOUT_MS => scaled(2) * 1000,
				TIMEOUT_MS => scaled(10) * 1000, EXPECT_FIRST_TIMEOUT => 1, IDEMPOTENCY_KEY => "b4-$n-2");
			waitpid($locker, 0);
			my @att = @{ $s->{attempts} // [] };
			note($JSON->encode(\@att));
			ok(exists $att[0]{timeout}, 'the first attempt timed out');
			is_deeply($att[-1], { status => 200, replayed => JSON::PP::true },
				'the last: 200, the first attempt\'s answer (replayed), not 400 "already cancelled"');
			ok(!(grep { ($_->{status} // 0) == 400 } @att), 'no attempt got 400');
			is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'cancelled');
			is(history_count($id), 1, 'cancelled once');
		};
	}
}

done_testing;
