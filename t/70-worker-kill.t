#!/usr/bin/perl
# A worker killed with SIGKILL (SPEC 1, 7): the master respawns it (same
# number of children, a new pid), the log names the signal, and the next
# requests succeed.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup api);
use Fixtures qw(:all);
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

# Worker pids the master logged as started ("worker N (pid P) started"),
# latest per slot.
sub logged_workers () {
	my %slot;
	my $log = $t->log;
	while ($log =~ /worker (\d+) \(pid (\d+)\) started/g) {
		$slot{$1} = $2;
	}
	return \%slot;
}

my $master = $t->callstopd_pid;
my @children = $t->worker_pids;
my $n = scalar @children;
my $slots = logged_workers();
is(scalar keys %$slots, 2, 'two workers logged as started');
my %is_child = map { $_ => 1 } @children;
ok(!grep({ !$is_child{$_} } values %$slots), 'the logged workers are children of the master');

my $call = fx_call($t, $tid, status => 'running');
is(api(GET => "/calls/status/$call")->{status}, 200, 'status works') for 1 .. 4;

for my $round (1 .. 2) {
	subtest "kill -9 worker 0, round $round" => sub {
		my $victim = logged_workers()->{0};
		ok($victim && kill(0, $victim), "worker 0 is pid $victim");
		my $t0 = time;
		kill 'KILL', $victim;
		my $back = $t->wait_until(sub {
			my @now = $t->worker_pids;
			return @now == $n && !grep({ $_ == $victim } @now) ? 1 : 0;
		}, timeout => 10, interval => 0.02);
		ok($back, "back to $n children, without pid $victim");
		diag(sprintf 'respawned after %.2f s', time - $t0);
		my $new = logged_workers()->{0};
		isnt($new, $victim, "worker 0 has a new pid ($new)");
		ok(grep({ $_ == $new } $t->worker_pids), '... a child of the master');
		is($t->callstopd_pid, $master, 'same master');
		ok(kill(0, $master), 'the master is alive');
		like($t->log, qr/\b$victim\b[^\n]*\b(?:SIGKILL|KILL|signal 9)\b/, 'the log names the pid and the signal');

		my @codes = map { api(GET => "/calls/status/$call")->{status} } 1 .. 10;
		is_deeply(\@codes, [ (200) x 10 ], 'the next requests succeed');
	};
}

subtest 'kill -9 both workers' => sub {
	my @victims = values %{ logged_workers() };
	kill 'KILL', @victims;
	my $back = $t->wait_until(sub {
		my @now = $t->worker_pids;
		my %v = map { $_ => 1 } @victims;
		return @now == $n && !grep({ $v{$_} } @now) ? 1 : 0;
	}, timeout => 10, interval => 0.02);
	ok($back, "back to $n children, none of the killed");
	my @codes = map { api(GET => "/calls/status/$call")->{status} } 1 .. 10;
	is_deeply(\@codes, [ (200) x 10 ], 'the next requests succeed');
	my $r = api(POST => '/calls/cancel', json => { resource_id => $call });
	is_deeply($r->{json}{results}, [ { resource_id => $call, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => 'Call cancelled.' } ], 'a cancel works');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'cancelled', 'and is stored');
};

done_testing();
