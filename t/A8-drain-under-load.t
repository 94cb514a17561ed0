#!/usr/bin/perl
# Draining under load (issue 10, defect 3): a worker told to stop (QUIT,
# which a reload sends to the old generation) must stop after the request in
# hand even while connections keep arriving.  ppoll() returns a ready socket
# without delivering a pending QUIT, so a worker that only waited for the
# signal there never drained under traffic and was TERMed mid-request after
# process_control_timeout (502s).  Asserted from outcomes and the master's
# log lines, never from speed.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use POSIX qw(_exit);
use Time::HiRes qw(sleep);

# Each cancel sends a DeleteRoom that LiveKit answers after 100 ms: with more
# clients than workers, connections are always waiting on the socket.
my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { process_control_timeout => 6 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');
my $batch = FakeProviders::running_batch($t, $tid, 'batch-a8', 3000, room => 'ra8');
my @calls = map { $_->[0] } @{ $t->psql("SELECT id FROM voice_call_logs WHERE batch_id = '$batch' ORDER BY id") };
$fake->control(livekit => 'slow', delay_ms => 100);

sub escalations () { return scalar(() = $t->log =~ /still running \d+ ms after SIGQUIT, sending SIGTERM/g) }

# 10 clients, each cancelling calls of its own (the load $round's half).
sub steady_load ($secs, $round) {
	return $t->load_start(procs => 10, duration => $secs, request => sub ($p, $n) {
		my $call = $calls[ $round * 1500 + ($p - 1) * 150 + $n % 150 ];
		return [ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $call } ];
	});
}

# ---- ten reloads under load: not one request fails ------------------------------------

my $load = steady_load(300, 0);
sleep 1;
my $drained = 0;
for my $gen (1 .. 10) {
	my @old = $t->worker_pids;
	kill 'HUP', $t->callstopd_pid;
	$t->wait_until(sub { $t->log =~ /reload: generation $gen, 2 workers/ }, timeout => 30)
		or last;
	$drained++ if $t->wait_until(sub { !grep { !CallstopTest::_gone($_) } @old }, timeout => 60);
	sleep 1;
}
my $res = $t->load_wait($load, stop => 1);
is($drained, 10, 'ten reloads, each old generation gone');
cmp_ok($res->{total}, '>=', 50, "a steady stream: $res->{total} requests");
is_deeply($res->{failed}, [], '... not one failed') or diag(explain($res->{by_status}));
is(escalations(), 0, 'every old worker drained on SIGQUIT: no SIGTERM was needed');
diag(sprintf('10 HUPs under load: %d requests, %d failed, %d SIGTERM escalations', $res->{total},
	scalar @{ $res->{failed} }, escalations()));

# ---- QUIT under load: requests in flight finish, no SIGTERM -----------------------------

my @held = map { fx_call($t, $tid, status => 'running') } 1 .. 2;

# Hold the rows of @held for $secs in another session: cancels of them wait.
sub hold_rows ($secs) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $ids = join ',', map { "'$_'" } @held;
		eval { $t->psql("BEGIN; SELECT 1 FROM voice_call_logs WHERE id IN ($ids) FOR UPDATE; SELECT pg_sleep($secs); COMMIT;") };
		_exit(0);
	}
	$t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'
		AND state = 'active' AND pid <> pg_backend_pid()}) == 1 }, timeout => 30) or die 'lock holder did not start';
	return $pid;
}

my $before = escalations();
my $holder = hold_rows(3);
my $inflight = $t->load_start(procs => 2, requests => 1, duration => 60, request => sub ($p, $n) {
	[ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $held[ $p - 1 ] } ];
});
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}) == 2 },
	timeout => 30), 'two cancels are in flight, waiting on the rows');
$load = steady_load(60, 1);
sleep 1;
my $master = $t->callstopd_pid;
my @children = $t->worker_pids;
kill 'QUIT', $master;
ok($t->wait_until(sub { CallstopTest::_gone($master) }, timeout => 60), 'SIGQUIT under load: the master exits');
$res = $t->load_wait($inflight);
is_deeply([ sort keys %{ $res->{by_status} } ], [200], 'the requests in flight finished: 200')
	or diag(explain($res));
$t->load_wait($load, stop => 1);
waitpid($holder, 0);
is(escalations() - $before, 0, 'the workers drained on SIGQUIT: no SIGTERM was needed');
ok($t->stop_callstopd(signal => 'QUIT'), 'reaped');
ok(!grep({ !CallstopTest::_gone($_) } @children), 'nothing is left running');

done_testing();
