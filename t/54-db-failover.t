#!/usr/bin/perl
# PostgreSQL failover (issue 10, "New guarantees"; doc/several-hosts.md): a
# primary and a synchronous standby, callstopd given both in one libpq
# multi-host conninfo with target_session_attrs=read-write.  Under a load of
# cancels the primary is stopped (immediate mode: a crash) and the standby
# promoted.  Asserted: nothing is answered 500 (only 200 or 503 + Retry-After);
# requests succeed again on the new primary without restarting callstopd;
# every cancel answered 200, before or after the failover, is there on the new
# primary (synchronous_commit = on: a commit is acknowledged only once the
# standby has it).  Measured: time from the stop, and from the promotion, to
# the first success.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use PgReplica;
use TimedLoad;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);
-x "$t->{pg_ctl}" =~ s{/pg_ctl$}{/pg_basebackup}r or plan skip_all => 'pg_basebackup not found';
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
# Running calls, one INSERT (fx_call's columns), more than the load cancels.
my @calls = map { $_->[0] } @{ $t->psql(qq{
	INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, started_at)
	SELECT $tid, 'agent-1', '+15550001111', 'running', now() - interval '1 minute' FROM generate_series(1, 6000)
	RETURNING id}) };

my $sb = PgReplica->start($t);
$sb->make_synchronous;
pass('a synchronous standby streams');
END { $sb->stop if $sb }

my $run = $t->tmpdir . '/run';
$t->restart_callstopd(conf => { database => sprintf('host=%s,%s port=%d,%d dbname=callstop user=postgres'
	. ' target_session_attrs=read-write', $run, $run, $t->pg_port, $sb->port) });
my $master = $t->callstopd_pid;
is($t->api(GET => "/calls/status/$calls[0]", key => $key, frontend => 'fe1')->{status}, 200, 'status works')
	for 1 .. 4;

# 4 clients, each cancelling calls of its own one after the other.
my $load = TimedLoad::start($t, procs => 4, duration => 16, request => sub ($k, $n) {
	my $call = $calls[ ($k - 1) + 4 * $n ] // die 'out of calls';
	return [ POST => '/calls/cancel', json => { resource_id => $call }, key => $key, frontend => 'fe1',
		tag => $call ];
});
sleep 4;
my $t_stop = time;
$t->pg_stop(mode => 'immediate');
sleep 1;
$sb->promote;
my $t_promoted = time;
my @rows = TimedLoad::wait($load);
diag(sprintf 'primary stopped at +0, standby promoted at +%.2f s; answers: %s', $t_promoted - $t_stop,
	TimedLoad::summary(@rows));

is_deeply([ TimedLoad::unexpected(@rows) ], [], 'every answer 200, or 503 with Retry-After: 1: never 500');
my @ok = grep { $_->{status} == 200 } @rows;
my @ok_before = grep { $_->{t1} < $t_stop } @ok;
my @ok_after = grep { $_->{t0} > $t_promoted } @ok;
ok(@ok_before >= 4, 'cancels succeed before the failover');
ok(@ok_after >= 4, '... and on the new primary, without restarting callstopd');
is($t->callstopd_pid, $master, 'same master');
my ($first) = sort { $a->{t1} <=> $b->{t1} } grep { $_->{t1} > $t_stop && $_->{t0} > $t_stop } @ok;
diag(sprintf 'first success %.2f s after the stop, %.2f s after the promotion', $first->{t1} - $t_stop,
	$first->{t1} - $t_promoted) if $first;

# Every cancel answered 200 is on the new primary.
my %seen;
my @answered = grep { !$seen{$_}++ } map { $_->{tag} } grep { ($_->{body} // '') =~ /"status":"cancelled"/ } @ok;
is(scalar(@answered), scalar(@ok), 'each 200 says cancelled, each of another call');
my $list = join ',', map { "'$_'" } @answered;
is($sb->psql_value("SELECT count(*) FROM voice_call_logs WHERE id IN ($list) AND status = 'cancelled'"),
	scalar(@answered), 'every cancel answered 200 is on the new primary (none lost)');
diag(scalar(@answered) . ' cancels answered 200, ' . scalar(grep { $_->{t1} < $t_stop } @ok) . ' before the stop');

$sb->stop;
done_testing();
