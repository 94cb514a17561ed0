#!/usr/bin/perl
# SIGQUIT, graceful stop (SPEC 7, php-fpm's meaning): idle workers exit at
# once, requests in flight complete, then the master exits and nothing is
# left running.  A worker that does not finish within process_control_timeout
# gets SIGTERM.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use POSIX qw(_exit);
use Time::HiRes qw(sleep time);

my $t = CallstopTest->new(workers => 3);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');
my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. 2;

# Hold both calls' rows for $secs in another session: cancels of them wait.
sub hold_rows ($secs) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $ids = join ',', map { "'$_'" } @calls;
		eval { $t->psql("BEGIN; SELECT 1 FROM voice_call_logs WHERE id IN ($ids) FOR UPDATE; SELECT pg_sleep($secs); COMMIT;") };
		_exit(0);
	}
	$t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'
		AND state = 'active' AND pid <> pg_backend_pid()}) == 1 }, timeout => 10) or die 'lock holder did not start';
	return $pid;
}

sub waiting_backends () {
	return $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'});
}

# ---- requests in flight complete --------------------------------------------------------

my $holder = hold_rows(3);
my $t0 = time;
my $load = $t->load_start(procs => 2, requests => 1, duration => 30, request => sub ($p, $n) {
	[ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $calls[ $p - 1 ] } ];
});
ok($t->wait_until(sub { waiting_backends() == 2 }, timeout => 10), 'two cancels are in flight, waiting on the rows');
my @busy = map { $_->{pid} } grep { $_->{state} eq 'busy' && $_->{request_uri} eq '/calls/cancel' }
	@{ $t->status_json->{processes} };
is(scalar @busy, 2, 'two workers busy with them');
my @children = $t->worker_pids;
my @idle = grep { my $p = $_; !grep { $_ == $p } @busy } @children;
my $master = $t->callstopd_pid;

kill 'QUIT', $master;
ok($t->wait_until(sub { $t->log =~ /graceful stop: sending SIGQUIT to 4 workers/ }), 'SIGQUIT: graceful stop');
ok($t->wait_until(sub { !grep { !CallstopTest::_gone($_) } @idle }, timeout => 2),
	'the idle worker and the retry child exit at once');
ok(!grep({ CallstopTest::_gone($_) } @busy), '... while the busy ones are still serving');
ok(!CallstopTest::_gone($master), '... and the master waits for them');

my $res = $t->load_wait($load);
my $took = time - $t0;
is($res->{total}, 2, 'both requests answered');
is_deeply($res->{failed}, [], '... 200, not a 5xx') or diag(explain($res));
cmp_ok($took, '>=', 2.5, '... after the rows were released');
waitpid($holder, 0);
is($t->psql_value(q{SELECT count(*) FROM voice_call_logs WHERE status = 'cancelled'}), 2, 'both calls cancelled');

ok($t->stop_callstopd(signal => 'QUIT'), 'then the master exits by itself');
ok(!grep({ !CallstopTest::_gone($_) } @children, $master), 'nothing is left running');
ok(!-e $t->tmpdir . '/callstopd.sock', 'the socket is removed');
like($t->log, qr/callstopd stopped/, 'stop logged');
unlike($t->log, qr/sending SIGTERM|sending SIGKILL/, 'no escalation was needed');

# ---- a request that does not finish: QUIT -> TERM after process_control_timeout -----------

# test_hang_route is a test hook (--enable-test-hooks)
if (CallstopTest->test_hooks) {
	$t->write_conf(conf => { test_hang_route => 'calls.status', request_timeout => 0, process_control_timeout => 2 });
	$t->start_callstopd;
	$load = $t->load_start(procs => 1, requests => 1, duration => 30,
		request => sub ($p, $n) { [ GET => "/calls/status/$calls[0]", headers => \%auth ] });
	ok($t->wait_until(sub { grep { $_->{state} eq 'busy' && $_->{request_uri} =~ m{^/calls/status/} }
		@{ $t->status_json->{processes} } }, timeout => 10), 'a request hangs');
	@children = $t->worker_pids;
	$master = $t->callstopd_pid;
	$t0 = time;
	kill 'QUIT', $master;
	ok($t->wait_until(sub { CallstopTest::_gone($master) }, timeout => 10), 'the master still exits');
	$took = time - $t0;
	cmp_ok($took, '>=', 2, sprintf('... after process_control_timeout (%.1f s)', $took));
	cmp_ok($took, '<', 8, '... not much later');
	like($t->log, qr/worker \d \(pid \d+\) still running \d+ ms after SIGQUIT, sending SIGTERM/, 'QUIT escalated to TERM');
	$res = $t->load_wait($load, ok => sub ($s) { $s == 502 });
	is_deeply($res->{failed}, [], 'the hung request gets a 502, not a hang');
	ok($t->stop_callstopd, 'reaped');
	ok(!grep({ !CallstopTest::_gone($_) } @children), 'nothing is left running');
}

done_testing();
