#!/usr/bin/perl
# SIGKILL of a worker in the middle of a cancel (SPEC 3.1: the whole request
# is one transaction): the request fails cleanly at nginx (502 in the
# family's body), and the master respawns the worker.  The worker is caught
# mid-cancel by holding the batch's row in another session, so that
# callstop_cancel() waits on it.  The master has the dead worker's backend
# terminated (issue 10, defect 9): a 502 from a killed worker means nothing
# committed, even once the row is released.  And a cancel held past
# request_timeout is rolled back by its statement_timeout first.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Background qw(hold_batch release);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

sub lock_waiters () {
	return $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}) + 0;
}

# A batch of 50 entries, 3 claimed by a dialer, 2 of them with a running call.
sub make_batch ($job) {
	my $batch = fx_batch($t, $tid, $job, 50);
	my @entries = fx_claim($t, $batch, 'dialer-1', 3);
	my @calls = map { fx_start($t, $_, 'dialer-1') } @entries[0, 1];
	fx_report($t, $_, 'running') for @calls;
	return ($batch, @calls);
}

for my $case ([ 'killed by SIGKILL: its backend terminated', 'batch-kill-1' ]) {
	my ($name, $job) = @$case;
	subtest $name => sub {
		my ($batch, @calls) = make_batch($job);
		my $before = fx_snapshot($t, tenant => $tid);

		my $holder = hold_batch($t, $batch, 120);
		my $load = $t->load_start(procs => 1, requests => 1, duration => 90, request => sub ($p, $n) {
			[ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $job, force => JSON::PP::true } ];
		});
		ok($t->wait_until(sub { lock_waiters() == 1 }, timeout => 60), 'the cancel is in flight, in its transaction');
		my ($busy) = grep { $_->{state} eq 'busy' && $_->{request_uri} eq '/calls/cancel' }
			@{ $t->status_json->{processes} };
		ok($busy, 'the status page shows the worker busy with it') or do { release($t, $holder); return };
		kill 'KILL', $busy->{pid};

		my $res = $t->load_wait($load, ok => sub ($s) { $s == 502 });
		is_deeply($res->{failed}, [], 'the request fails cleanly: 502') or diag(explain($res));
		my ($line) = grep { /^502\t/ } split /\n/, CallstopTest::_slurp($t->tmpdir . "/load-$load->{id}-1.txt");
		like($line // '', qr/"code":"bad_gateway"/, '... with the unified body');

		ok($t->wait_until(sub {
			my @now = $t->worker_pids;
			@now == 3 && !grep { $_ == $busy->{pid} } @now;
		}, timeout => 60), 'the worker is respawned');
		like($t->log, qr/worker \d \(pid $busy->{pid}\) killed by signal SIGKILL/, '... its death logged');

		# generous: it failed at 10 s on a loaded machine (issue 10, defect 14)
		ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%callstop_cancel%' AND pid <> pg_backend_pid()}) == 0 }, timeout => 60),
			'the killed worker\'s backend is done while the row is still held: terminated');
		like($t->log, qr/worker \d \(pid $busy->{pid}\) died serving POST \/calls\/cancel .*: terminating its database backend \d+/,
			'... by the master, logged');
		ok($t->wait_until(sub { $t->log =~ /database backend \d+ of a dead worker terminated/ }, timeout => 60),
			'... and its helper');
		release($t, $holder);

		my $after = fx_snapshot($t, tenant => $tid);
		my $status = $t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$batch'");
		isnt($status, 'cancelled', 'the 502 means nothing committed: the batch is not cancelled');
		is_deeply($after, $before, '... not a row changed');
		fx_counters_ok($t, $batch, 'the batch counters equal its entries');

		my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
			json => { resource_id => $job, force => JSON::PP::true });
		is($r->{status}, 200, 'the client retries: 200') or diag($r->{body});
		like($r->{json}{status}, qr/^cancelled$/, '... the batch is cancelled');
		is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$batch'"), 'cancelled', '... in the database');
		is(scalar @{ fx_history($t, batch => $batch) }, 1, '... with one history row in all');
		fx_counters_ok($t, $batch, '... and counters equal to its entries');
	};
}

# With request_timeout set, the batch cancel's statement_timeout is capped
# 1.5 s below it (callstop.conf(5), database_batch_timeout_ms): a cancel held
# on a lock is rolled back by PostgreSQL and answered 503 before the
# watchdog would kill the worker, so the watchdog never leaves a transaction
# behind it either.
subtest 'held past request_timeout: rolled back by statement_timeout, 503, the worker lives' => sub {
	$t->restart_callstopd(conf => { request_timeout => 10 });
	my ($batch, @calls) = make_batch('batch-kill-2');
	my $before = fx_snapshot($t, tenant => $tid);
	my $holder = hold_batch($t, $batch, 120);
	my $load = $t->load_start(procs => 1, requests => 1, duration => 90, request => sub ($p, $n) {
		[ POST => '/calls/cancel', headers => \%auth, json => { resource_id => 'batch-kill-2', force => JSON::PP::true } ];
	});
	ok($t->wait_until(sub { lock_waiters() == 1 }, timeout => 60), 'the cancel is in flight, in its transaction');
	my @workers = $t->worker_pids;
	my $res = $t->load_wait($load, ok => sub ($s) { $s == 503 });
	is_deeply($res->{failed}, [], 'answered 503: rolled back, nothing changed') or diag(explain($res));
	my ($line) = grep { /^503\t/ } split /\n/, CallstopTest::_slurp($t->tmpdir . "/load-$load->{id}-1.txt");
	like($line // '', qr/"code":"database_unavailable"/, '... with the unified body');
	unlike($t->log, qr/exceeded request_timeout/, 'the watchdog had nothing to kill');
	is_deeply([ sort $t->worker_pids ], [ sort @workers ], 'the same workers serve on');
	release($t, $holder);
	is_deeply(fx_snapshot($t, tenant => $tid), $before, 'not a row changed');
	my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
		json => { resource_id => 'batch-kill-2', force => JSON::PP::true });
	is($r->{status}, 200, 'the client retries: 200') or diag($r->{body});
	is(scalar @{ fx_history($t, batch => $batch) }, 1, '... with one history row in all');
	fx_counters_ok($t, $batch, '... and counters equal to its entries');
};

done_testing();
