#!/usr/bin/perl
# PostgreSQL unreachable (SPEC 3: 503 database_unavailable, Retry-After: 1,
# nothing changed), a connection lost in the middle of a cancel (one
# transaction: none of it happens), a statement over its statement_timeout
# (rolled back: 503 too), and recovery without restarting callstopd.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup api);
use Fixtures qw(:all);
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2,
	conf => { database_statement_timeout_ms => 1500, database_batch_timeout_ms => 20000 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $T = JSON::PP::true;

my $call = fx_call($t, $tid, status => 'running', livekit_room => 'room-1');
my $batch = fx_batch($t, $tid, 'batch-d1', 10);
my @e = fx_claim($t, $batch, 'd1', 2);
my $bcall = fx_start($t, $e[0], 'd1', room => 'room-b');

my @requests = (
	[ 'cancel one call', POST => '/calls/cancel', json => { resource_id => $call } ],
	[ 'cancel a list', POST => '/calls/cancel', json => { resource_id => [ 'batch-d1', $call ], force => $T } ],
	[ 'batch-cancel', POST => '/batch/batch-cancel/batch-d1?force=true' ],
	[ 'call status', GET => "/calls/status/$call" ],
	[ 'batch status', GET => '/calls/status/batch-d1?limit=2' ],
);

sub is_503 ($r, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is_unified_error($r, 503, 'database_unavailable', $name);
	is($r->{headers}{'retry-after'}, '1', "$name: Retry-After: 1");
}

# Warm up: both workers connected, the key cached.
is(api(GET => "/calls/status/$call")->{status}, 200, 'status works') for 1 .. 4;
my $master = $t->callstopd_pid;
my @workers = $t->worker_pids;
my $before = fx_snapshot($t);

# ---- a connection lost in the middle of a cancel --------------------------------------

subtest 'connection lost inside the cancel transaction: none of it happens' => sub {
	# The cancel of $call (listed last) kills its own backend, after the batch
	# was cancelled in the same transaction.
	fx_kill_backend($t, $call);
	my $snap = fx_snapshot($t);
	my $r = api(POST => '/calls/cancel', json => { resource_id => [ 'batch-d1', $bcall, $call ], force => $T });
	is_503($r, 'the cancel answers 503');
	is_deeply(fx_snapshot($t), $snap, 'nothing changed: the batch and the first call were not cancelled either');
	fx_kill_backend_off($t);

	# A statement the server refuses inside the transaction: rolled back as
	# a whole too, but answered 500 internal_error - PostgreSQL is up, so
	# this is no 503 database_unavailable (SPEC 3) telling the client to
	# retry.
	$t->psql(qq{
		CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
			IF NEW.call_id = '$call' THEN RAISE EXCEPTION 'test: refused'; END IF;
			RETURN NEW;
		END \$\$;
		CREATE TRIGGER test_fail BEFORE INSERT ON cancel_history FOR EACH ROW EXECUTE FUNCTION test_fail();
	});
	$snap = fx_snapshot($t);
	$r = api(POST => '/calls/cancel', json => { resource_id => [ 'batch-d1', $call ], force => $T });
	is_unified_error($r, 500, 'internal_error', 'a failing statement: 500');
	ok(!defined $r->{headers}{'retry-after'}, '... without Retry-After');
	is_deeply(fx_snapshot($t), $snap, 'nothing changed');
	$t->psql('DROP TRIGGER test_fail ON cancel_history; DROP FUNCTION test_fail()');
	is(api(GET => "/calls/status/$call")->{json}{status}, 'running', 'the worker still answers; the call runs');
};

$before = fx_snapshot($t);

# ---- PostgreSQL stopped ----------------------------------------------------------------

$t->pg_stop;
subtest 'PostgreSQL stopped: 503 on every route' => sub {
	for my $req (@requests) {
		my ($name, @args) = @$req;
		is_503(api(@args), $name);
	}
	# Past the key cache: still 503, not 401.
	sleep 1.1;
	is_503(api(GET => "/calls/status/$call"), 'after the key cache expired');
	my $fresh = 'csk_' . join '', map { ('A' .. 'Z', 'a' .. 'z', 0 .. 9)[ rand 62 ] } 1 .. 40;
	is_503($t->api(GET => "/calls/status/$call", key => $fresh, frontend => 'fe1'), 'a key never seen: 503, not 401');
	is($t->callstopd_pid, $master, 'callstopd still runs');
	ok(kill(0, $master), '... the master is alive');
};

$t->pg_start;
is_deeply(fx_snapshot($t), $before, 'nothing was changed while PostgreSQL was down');

subtest 'PostgreSQL back: requests succeed without restarting callstopd' => sub {
	my $t0 = time;
	my $ok = $t->wait_until(sub { api(GET => "/calls/status/$call")->{status} == 200 }, timeout => 5,
		interval => 0.1);
	ok($ok, 'status answers 200 again');
	diag(sprintf 'recovered after %.2f s', time - $t0);
	# A worker whose last connect was refused tries again after a short
	# pause (src/common/db.c) and connects lazily, on its next request:
	# wait for a run of successes that both workers serve.
	my @codes;
	ok($t->wait_until(sub { @codes = map { api(GET => "/calls/status/$call")->{status} } 1 .. 6;
		!grep { $_ != 200 } @codes }, timeout => 10), 'every request succeeds') or diag("@codes");

	my $r = api(POST => '/calls/cancel', json => { resource_id => [ 'batch-d1', $call ], force => $T });
	is($r->{status}, 200, 'cancel works') or diag($r->{body});
	is_deeply([ map { [ $_->{status}, $_->{cancelled_count} ] } @{ $r->{json}{results} } ],
		[ [ cancelled => 10 ], [ cancelled => 1 ] ], 'the batch (9 pending + 1 running call) and the call')
		or diag($r->{body});
	fx_counters_ok($t, $batch, 'counters equal the entry counts');
	is(scalar @{ fx_history($t) }, 2, 'two history rows: only the successful cancel wrote any');

	is($t->callstopd_pid, $master, 'same master');
	is_deeply([ $t->worker_pids ], \@workers, 'same workers: nothing was restarted');
};

# ---- a statement slower than its statement_timeout ------------------------------------

subtest 'statement_timeout: a slow cancel of a call is rolled back, 503; a batch has a long one' => sub {
	# Every cancel_history insert sleeps 4 s: over the short class
	# (database_statement_timeout_ms, 1.5 s here), under the batch
	# class (database_batch_timeout_ms, 20 s here).
	$t->psql(q{
		CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(4); RETURN NEW; END $$;
		CREATE TRIGGER test_slow BEFORE INSERT ON cancel_history FOR EACH ROW EXECUTE FUNCTION test_slow();
	});
	my $call2 = fx_call($t, $tid, status => 'running');
	my $snap = fx_snapshot($t);
	my $r = api(POST => '/calls/cancel', json => { resource_id => $call2 });
	is_503($r, 'a cancel of a call over its statement_timeout');
	is_deeply(fx_snapshot($t), $snap, 'nothing changed: PostgreSQL rolled it back');
	like($t->log, qr/database: cancel: cancelled after 1500 ms \(statement_timeout\); rolled back/, 'logged');

	fx_batch($t, $tid, 'batch-slow', 3);
	$r = api(POST => '/batch/batch-cancel/batch-slow');
	is($r->{status}, 200, 'a batch cancel, as slow, runs under the long timeout') or diag($r->{body});
	$t->psql('DROP TRIGGER test_slow ON cancel_history; DROP FUNCTION test_slow()');
	# the worker whose statement was cancelled may still be reconnecting
	# (503 meanwhile, on a loaded machine): the question is the call's state
	my $st;
	$t->wait_until(sub { $st = api(GET => "/calls/status/$call2"); $st->{status} == 200 }, timeout => scaled(10));
	is($st->{json}{status}, 'running', 'the call still runs') or diag($st->{body});
};

done_testing();
