#!/usr/bin/perl
# PostgreSQL crash-restart (issue 10, defect 5) and libpq notices (defect 8).
#
# After a backend is killed with SIGKILL the postmaster resets the whole
# cluster; every worker's connection is then dead, but the first query on it
# returns an error without SQLSTATE while PQstatus() still says OK.  That is a
# lost connection (reconnect, 503 or a retried statement), never a statement
# the server refused (500).  The same after an immediate-mode restart under
# load.  And what PostgreSQL sends as NOTICE / WARNING (a trigger's RAISE,
# "terminating connection because of crash of another server process") goes
# through the logger, one escaped line each, never raw onto stderr.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use TimedLoad;
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. 200;
# The harness's cluster runs with synchronous_commit = off: a crash loses the
# commits of the last few hundred ms, which could be the fixtures' last rows
# (seen: the 200th call gone after the backend kill, then answered 404).
# What this test crashes must be durable first.
$t->psql('CHECKPOINT');

sub api (@a) { return $t->api(@a, key => $key, frontend => 'fe1') }

# The backends serving callstopd (not the harness's psql, not the
# postmaster's helpers).
sub callstop_backends () {
	my ($pm) = CallstopTest::_slurp($t->tmpdir . '/pg/postmaster.pid') =~ /^(\d+)/ or die 'no postmaster';
	return grep { CallstopTest::_slurp("/proc/$_/cmdline") =~ /^postgres: postgres callstop / } $t->_children($pm);
}

# Every line callstopd wrote is one of its log lines: nothing raw from libpq.
sub raw_lines () {
	return grep { /\S/ && !/^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\] callstop\w*\[\d+\]: / } split /\n/, $t->log;
}

is(api(GET => "/calls/status/$calls[0]")->{status}, 200, 'status works') for 1 .. 4;

subtest 'a NOTICE or WARNING of PostgreSQL: one escaped log line' => sub {
	$t->psql(q{
		CREATE FUNCTION test_notice() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE WARNING E'test warning\nsecond line';
			RAISE NOTICE 'test notice';
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_notice BEFORE INSERT ON cancel_history FOR EACH ROW EXECUTE FUNCTION test_notice();
	});
	is(api(POST => '/calls/cancel', json => { resource_id => $calls[0] })->{status}, 200, 'the cancel succeeds');
	$t->psql('DROP TRIGGER test_notice ON cancel_history; DROP FUNCTION test_notice()');
	ok($t->wait_until(sub { $t->log =~ /\[warn\] callstopd\[\d+\]: database: WARNING 01000: test warning\\x0asecond line$/m }),
		'the warning is a log line at level warn, its newline escaped');
	like($t->log, qr/\[info\] callstopd\[\d+\]: database: NOTICE 00000: test notice$/m, 'the notice at level info');
	is_deeply([ raw_lines() ], [], 'no raw libpq output');
};

subtest 'a backend killed (crash-restart): 503 or 200, never 500' => sub {
	my @b = callstop_backends();
	ok(@b >= 2, 'callstopd has its connections') or diag(scalar @b);
	kill 'KILL', $b[0];
	my (@codes, $ok);
	my $deadline = time + 30;
	while (time < $deadline) {
		my $r = api(GET => "/calls/status/$calls[1]");
		push @codes, $r->{status};
		last if $r->{status} == 200 && ++$ok >= 4;
		sleep 0.05;
	}
	ok($ok && $ok >= 4, 'requests succeed again after the restart') or diag("@codes");
	is_deeply([ grep { $_ != 200 && $_ != 503 } @codes ], [], 'every answer 200 or 503') or diag("@codes");
	diag('answers after the kill: ' . join ' ', @codes);
};

subtest 'PostgreSQL restarted in immediate mode under load: never 500' => sub {
	my $load = TimedLoad::start($t, procs => 4, duration => 14, request => sub ($k, $n) {
		my $call = $calls[ 2 + ($k * 31 + $n) % (@calls - 2) ];
		return $n % 2
			? [ POST => '/calls/cancel', json => { resource_id => $call }, key => $key, frontend => 'fe1' ]
			: [ GET => "/calls/status/$call", key => $key, frontend => 'fe1' ];
	});
	sleep 2;
	my $t_stop = time;
	$t->pg_stop(mode => 'immediate');
	sleep 2;
	$t->pg_start;
	my $t_up = time;
	my @rows = TimedLoad::wait($load);
	diag(sprintf 'stopped at +0, up again at +%.1f s: %s', $t_up - $t_stop, TimedLoad::summary(@rows));
	is_deeply([ TimedLoad::unexpected(@rows) ], [], 'every answer 200, or 503 with Retry-After: 1');
	my @late = grep { $_->{t0} > $t_up + 3 } @rows;
	ok(@late >= 4 && !grep({ $_->{status} != 200 } @late), 'from 3 s after the restart every request succeeds')
		or diag(TimedLoad::summary(@late));
	my ($first) = sort { $a->{t1} <=> $b->{t1} } grep { $_->{status} == 200 && $_->{t1} > $t_up } @rows;
	diag(sprintf 'first success %.2f s after PostgreSQL was up again', $first->{t1} - $t_up) if $first;
};

is_deeply([ raw_lines() ], [], 'nothing raw from libpq in the log, crashes included');

done_testing();
