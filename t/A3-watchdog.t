#!/usr/bin/perl
# request_timeout (SPEC 7): a worker whose request runs longer is logged with
# the method, URI and request id, killed and replaced by the master; nginx
# answers a clean 502 in the family's body instead of hanging.  The hang is
# made by the test-only key test_hang_route.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Time::HiRes qw(time);

plan skip_all => 'needs a callstopd built with --enable-test-hooks' unless CallstopTest->test_hooks;

my $t = CallstopTest->new(workers => 2, conf => { request_timeout => 2, test_hang_route => 'calls.status' });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $call = fx_call($t, $tid, status => 'running');

my @before = $t->worker_pids;
is(scalar @before, 3, 'two workers and the retry child');

my $t0 = time;
my $r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
my $took = time - $t0;
my $rid = $r->{headers}{'x-request-id'} // '';

is($r->{status}, 502, 'the hung request is answered 502') or diag($r->{body});
is_deeply($r->{json}, { error => { code => 'bad_gateway', message => 'callstopd is not reachable' }, request_id => $rid },
	'... with the unified body');
cmp_ok($took, '>=', 2, "... not before request_timeout (${\ sprintf '%.1f', $took} s)");
cmp_ok($took, '<', 8, '... but soon after it');

my $log = $t->log;
like($log, qr/test_hang_route = calls\.status \(TEST ONLY\): request \Q$rid\E hangs/, 'the test switch is logged');
ok($log =~ /worker (\d) \(pid (\d+)\) exceeded request_timeout 2 s serving GET \/calls\/status\/\Q$call\E request_id \Q$rid\E; killing it/,
	'the master logs the worker, method, URI and request id') or diag($log);
my ($slot, $pid) = ($1, $2);
ok((grep { $_ == ($pid // 0) } @before), '... a worker of this master');
ok($t->wait_until(sub { $t->log =~ /worker $slot \(pid $pid\) killed by signal SIGKILL after \d+\.\ds/ }),
	'its end is logged');
like($t->nginx_log, qr/upstream prematurely closed connection/, 'nginx saw the connection close');

ok($t->wait_until(sub {
	my @now = $t->worker_pids;
	return @now == 3 && !grep { $_ == $pid } @now;
}, timeout => 10), 'a new worker took its place');
ok(!-e "/proc/$pid" || CallstopTest::_gone($pid), 'the killed worker is gone');
like($t->log, qr/worker $slot \(pid (?!$pid)\d+\) started, generation 0/, 'the new worker is logged');

my $st = $t->status_json;
cmp_ok($st->{slow_requests}, '>=', 1, 'the killed request counts as slow');
is(scalar(grep { $_->{state} eq 'busy' && $_->{request_uri} =~ m{^/calls/status} } @{ $st->{processes} }), 0,
	'no worker is busy with it any more');

# Other routes are served meanwhile and after.
$r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $call });
is($r->{status}, 200, 'other routes work') or diag($r->{body});
is($r->{json}{status}, 'cancelled', '... the call is cancelled');

# Two hung requests at once: both killed, both workers replaced.
my $load = $t->load_start(procs => 2, requests => 1, duration => 20,
	request => sub ($p, $n) { [ GET => "/calls/status/$call", headers => { 'X-API-Key' => $key, 'X-Frontend-ID' => 'fe1' } ] });
my $res = $t->load_wait($load, ok => sub ($s) { $s == 502 });
is($res->{total}, 2, 'two hung requests at once');
is_deeply($res->{failed}, [], '... both answered 502');
cmp_ok($res->{max_seconds}, '<', 8, '... within about request_timeout');
ok($t->wait_until(sub { scalar(() = $t->worker_pids) == 3 }, timeout => 10), '... and both workers replaced');
my $kills = () = $t->log =~ /exceeded request_timeout/g;
is($kills, 3, 'three kills logged in all');

done_testing();
