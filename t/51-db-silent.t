#!/usr/bin/perl
# PostgreSQL silent (issue 10, defect 2): the whole cluster, postmaster and
# backends, stopped with SIGSTOP - what a hung or black-holed database server
# looks like to callstopd over the test's unix socket (no TCP timeout can
# help there).  Every request must still be answered, 503 database_unavailable
# with Retry-After (a statement runs under statement_timeout, and a worker
# stops waiting for a server that says nothing), never hang until
# request_timeout; a worker started meanwhile must not block in its connect
# forever either.  Once PostgreSQL resumes, requests succeed again without a
# restart.  The bounds asserted are generous (several times the 3 s target);
# the figures measured are printed.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use TimedLoad;
use Time::HiRes qw(time sleep);
use List::Util qw(max min);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. 400;
my $master = $t->callstopd_pid;

# Every process of the cluster: the postmaster (first line of its pid file)
# and its children.
sub pg_pids () {
	my ($pm) = CallstopTest::_slurp($t->tmpdir . '/pg/postmaster.pid') =~ /^(\d+)/ or die 'no postmaster';
	return ($pm, $t->_children($pm));
}
my @stopped;
sub pg_freeze () { @stopped = pg_pids(); kill 'STOP', @stopped }
sub pg_thaw () { kill 'CONT', reverse @stopped; @stopped = () }
END { pg_thaw() if @stopped }

is($t->api(GET => "/calls/status/$calls[0]", key => $key, frontend => 'fe1')->{status}, 200, 'status works')
	for 1 .. 4;

# 4 clients: status reads and single-call cancels (a cancel naming a batch
# has a long statement_timeout of its own, database_batch_timeout_ms).
my $silent = 12;
my $load = TimedLoad::start($t, procs => 4, duration => $silent + 12, request => sub ($k, $n) {
	my $call = $calls[ ($k * 97 + $n) % @calls ];
	return $n % 3 == 2
		? [ POST => '/calls/cancel', json => { resource_id => $call }, key => $key, frontend => 'fe1' ]
		: [ GET => "/calls/status/$call", key => $key, frontend => 'fe1' ];
});
sleep 3;
pg_freeze();
my $t_stop = time;
sleep 4;
# A worker started while the database is silent (a respawn) must serve too.
my @workers = $t->worker_pids;
my $t_kill = time;
kill 'KILL', $workers[0];
sleep $silent - 4;
my $t_cont = time;
pg_thaw();
my @rows = TimedLoad::wait($load);

my @before = grep { $_->{t1} < $t_stop } @rows;
my @at_stop = grep { $_->{t0} < $t_stop && $_->{t1} >= $t_stop } @rows;
my @during = grep { $_->{t0} >= $t_stop && $_->{t1} < $t_cont } @rows;
my @over = grep { $_->{t0} < $t_cont && $_->{t1} >= $t_cont } @rows;
my @after = grep { $_->{t0} >= $t_cont } @rows;
diag(sprintf 'before: %s; silent: %s; across the resume: %s; after: %s', map { TimedLoad::summary(@$_) }
	\@before, \@during, \@over, \@after);

is_deeply([ grep { $_->{status} != 200 } @before ], [], 'before: every request succeeds')
	or diag(explain([ grep { $_->{status} != 200 } @before ]));

ok(scalar(@during) >= 8, 'while PostgreSQL is silent, requests are answered (not held until it resumes)')
	or diag(scalar(@during) . ' answered');
# (but the one request the killed worker was serving, if any: 502)
my @bad = grep { $_->{status} != 503 || ($_->{retry_after} // '') ne '1' }
	grep { !($_->{status} == 502 && $_->{t0} <= $t_kill && $_->{t1} >= $t_kill) } @during;
is_deeply(\@bad, [], '... every one 503 with Retry-After: 1');
my $slowest = max(0, map { $_->{t1} - $_->{t0} } @at_stop, @during, @over);
ok($slowest < 10, 'no request waits anywhere near request_timeout') or diag("slowest $slowest s");
ok(!grep({ $_->{status} == 500 } @rows), 'no 500 at any time');
like(@during ? $during[0]{body} : "", qr/"database_unavailable"/, 'the unified 503 body');
my @sorted = sort { $a <=> $b } map { $_->{t1} - $_->{t0} } @during;
my $first503 = min(map { $_->{t1} } grep { $_->{status} == 503 } @during) // $t_cont;
diag(sprintf 'silent: first 503 %.2f s after SIGSTOP; latency median %.2f s, max %.2f s', $first503 - $t_stop,
	$sorted[ @sorted / 2 ] // 0, $slowest);

# After the resume: back to 200 without a restart.
my ($first_ok) = grep { $_->{status} == 200 } @after;
ok($first_ok, 'after the resume, requests succeed again');
my @late = grep { $_->{t0} >= $t_cont + 2 } @after;
ok(@late >= 4 && !grep({ $_->{status} != 200 } @late), 'from 2 s after the resume, every request succeeds')
	or diag(TimedLoad::summary(@late));
diag(sprintf 'resume: first success %.2f s after SIGCONT; %d of %d requests within 2 s succeeded',
	($first_ok ? $first_ok->{t1} : time) - $t_cont,
	scalar(grep { $_->{status} == 200 } grep { $_->{t0} < $t_cont + 2 } @after),
	scalar(grep { $_->{t0} < $t_cont + 2 } @after));
is($t->callstopd_pid, $master, 'same master');
ok($t->wait_until(sub { my @now = $t->worker_pids; @now == @workers && !grep { $_ == $workers[0] } @now },
	timeout => 30), 'the killed worker was replaced');
like($t->log, qr/database: \w+: no answer after \d+ ms, and the server does not answer a new connection/,
	'the log says why');

done_testing();
