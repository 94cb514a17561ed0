#!/usr/bin/perl
# SPEC 8: a request that failed (500, 503) stores nothing, and its retry with
# the same Idempotency-Key runs:
#   - the connection lost inside the keyed transaction (its backend killed
#     once, by a trigger): 503, nothing changed - the statement is not run
#     again alone on a new connection (db.c retries nothing inside a
#     transaction), nothing stored;
#   - a statement the server refuses: 500, nothing stored;
#   - PostgreSQL stopped: 503, nothing stored; once it is back, the retry runs
#     and its answer is then replayed.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup);
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2, conf => { database_statement_timeout_ms => 1500 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

sub keyed ($idem, $json) {
	return $t->request(POST => '/calls/cancel', headers => { %auth, 'Idempotency-Key' => $idem }, body => $json);
}

sub stored () { return $t->psql_value('SELECT count(*) FROM callstop_idempotency') + 0 }

sub ran_ok ($r, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($r->{status}, 200, "$name: 200") or diag($r->{body});
	ok(!exists $r->{headers}{'idempotent-replayed'}, "$name: it ran (no replay)");
}

my $call = fx_call($t, $tid, status => 'running');
my $call2 = fx_call($t, $tid, status => 'running');
my $call3 = fx_call($t, $tid, status => 'running');
fx_batch($t, $tid, 'batch-b3', 5);

subtest 'connection lost inside the keyed transaction: 503, nothing changed, nothing stored' => sub {
	fx_kill_backend($t, $call, once => 1);
	my $snap = fx_snapshot($t);
	my $r = keyed('b3-lost', { resource_id => [ 'batch-b3', $call ] });
	is($r->{status}, 503, 'status 503') or diag($r->{body});
	is($r->{json}{error}{code}, 'database_unavailable', 'database_unavailable');
	is_deeply(fx_snapshot($t), $snap, 'nothing changed: not even the batch');
	is(stored(), 0, 'nothing stored');
	fx_kill_backend_off($t);
	$r = keyed('b3-lost', { resource_id => [ 'batch-b3', $call ] });
	ran_ok($r, 'the retry');
	is($r->{json}{total_cancelled}, 6, 'the batch and the call cancelled');
	is(stored(), 1, 'its key stored');
};

subtest 'a statement refused: 500, nothing stored; the retry runs' => sub {
	$t->psql(qq{
		CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
			IF NEW.call_id = '$call2' THEN RAISE EXCEPTION 'test: refused'; END IF;
			RETURN NEW;
		END \$\$;
		CREATE TRIGGER test_fail BEFORE INSERT ON cancel_history FOR EACH ROW EXECUTE FUNCTION test_fail();
	});
	my $snap = fx_snapshot($t);
	my $r = keyed('b3-500', { resource_id => $call2 });
	is($r->{status}, 500, 'status 500') or diag($r->{body});
	is_deeply(fx_snapshot($t), $snap, 'nothing changed');
	is(stored(), 1, 'nothing stored');
	$t->psql('DROP TRIGGER test_fail ON cancel_history; DROP FUNCTION test_fail()');
	ran_ok(keyed('b3-500', { resource_id => $call2 }), 'the retry');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call2'"), 'cancelled', 'cancelled');
};

subtest 'PostgreSQL stopped: 503, nothing stored; back: the retry runs once' => sub {
	my $n = stored();
	$t->pg_stop;
	my $r = keyed('b3-down', { resource_id => $call3 });
	is($r->{status}, 503, 'status 503');
	is($r->{headers}{'retry-after'}, '1', 'Retry-After: 1');
	$t->pg_start;
	is(stored(), $n, 'nothing stored');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call3'"), 'running', 'nothing changed');
	# both workers reconnected (a worker notices the restart on its next
	# statement, answered 503: t/50)
	ok($t->wait_until(sub { !grep { $_ != 200 } map { $t->api(GET => "/calls/status/$call", key => $key,
		frontend => 'fe1')->{status} } 1 .. 6 }, timeout => 20, interval => 0.2), 'PostgreSQL answers again');
	my $again = keyed('b3-down', { resource_id => $call3 });
	ran_ok($again, 'the retry');
	is($again->{json}{message}, 'Call cancelled.', 'it cancelled the call');
	my $third = keyed('b3-down', { resource_id => $call3 });
	is($third->{headers}{'idempotent-replayed'}, 'true', 'a third send is a replay') or diag(explain($third));
	is($third->{body}, $again->{body}, '... of that answer');
	is(scalar @{ fx_history($t, call => $call3) }, 1, 'one cancel ran');
};

done_testing;
