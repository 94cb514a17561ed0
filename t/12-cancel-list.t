#!/usr/bin/perl
# POST /calls/cancel with a list of ids (SPEC 3.1): first-seen order,
# duplicates collapsed (UUIDs compared lower-cased, echoed as first given),
# processed in order, one bad id does not fail the request, total_cancelled
# is the sum, max_resources ids accepted; invariant 4.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel call_status);
use Fixtures qw(:all);
use List::Util qw(sum0 shuffle);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $T = JSON::PP::true;
my $F = JSON::PP::false;

sub call_res ($id, $status, $count, $message) {
	return { resource_id => $id, resource_type => 'call', status => $status, cancelled_count => $count,
		message => $message };
}

sub batch_res ($id, $status, $count, $message) {
	return { resource_id => $id, resource_type => 'batch', status => $status, cancelled_count => $count,
		message => $message };
}

sub list_answer (@results) {
	return { results => \@results, total_cancelled => sum0(map { $_->{cancelled_count} } @results) };
}

# A batch of $n entries with $start started calls (claimed by d1).
sub batch_with_calls ($job, $n, $start) {
	my $b = fx_batch($t, $tid, $job, $n);
	my @e = fx_claim($t, $b, 'd1', $start);
	return ($b, [ map { fx_start($t, $_, 'd1') } @e ]);
}

subtest 'results in first-seen order, mixed types, one bad id does not fail the request' => sub {
	my $c1 = fx_call($t, $tid, status => 'running');
	my $c2 = fx_call($t, $tid, status => 'completed');
	my $c3 = fx_call($t, $tid, status => 'ringing', livekit_room => 'room-l1');
	my ($b) = batch_with_calls('batch-l1', 4, 0);
	my $unknown = fx_uuid();
	my $h0 = fx_history_count($t);
	my @ids = ($unknown, $c1, 'batch-l1', 'garbage id', $c2, 'batch-missing', $c3);
	my $r = cancel({ resource_id => \@ids });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, list_answer(
		call_res($unknown, 'not_found', 0, 'Call not found'),
		call_res($c1, 'cancelled', 1, 'Call cancelled.'),
		batch_res('batch-l1', 'cancelled', 4, 'Batch cancelled. 4 pending entries cancelled.'),
		call_res('garbage id', 'not_found', 0, 'Call not found'),
		call_res($c2, 'completed', 0, 'Call already in terminal state: completed'),
		batch_res('batch-missing', 'not_found', 0, 'Batch not found'),
		call_res($c3, 'cancelled', 1, 'Call cancelled. LiveKit not configured; room not terminated.'),
	), 'one result per id, in order; total_cancelled = 6');
	is($r->{json}{total_cancelled}, 6, 'total_cancelled is the sum');
	ok(!exists $r->{json}{resource_id}, 'a list answer has no flat fields');
	is_deeply([ map { call_status($_) } $c1, $c2, $c3 ], [qw(cancelled completed cancelled)], 'call rows');
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'cancelled', 'batch row');
	is(fx_history_count($t), $h0 + 3, 'three history rows: the three changed resources');
	is_deeply($t->psql(qq{SELECT coalesce(call_id::text, batch_id::text), request_id FROM cancel_history
		WHERE id > $h0 ORDER BY id}),
		[ map { [ $_, $r->{headers}{'x-request-id'} ] } $c1, $b, $c3 ], 'rows for c1, the batch, c3, in order');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'duplicates collapsed, the same UUID in another case too' => sub {
	my $c1 = fx_call($t, $tid, status => 'initiated');
	my $c2 = fx_call($t, $tid, status => 'connecting');
	my ($b) = batch_with_calls('batch-l2', 2, 0);
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => [ $c1, 'batch-l2', uc($c1), $c1, uc($c2), 'batch-l2', $c2,
		'nope', 'nope' ] });
	is_deeply($r->{json}, list_answer(
		call_res($c1, 'cancelled', 1, 'Call cancelled.'),
		batch_res('batch-l2', 'cancelled', 2, 'Batch cancelled. 2 pending entries cancelled.'),
		call_res(uc($c2), 'cancelled', 1, 'Call cancelled.'),
		call_res('nope', 'not_found', 0, 'Call not found'),
	), 'one result per distinct id, echoed as first given');
	is(fx_history_count($t), $h0 + 3, 'one history row per changed resource');
	is(scalar @{ fx_history($t, call => $c1) }, 1, 'c1: one row');
	is(scalar @{ fx_history($t, call => $c2) }, 1, 'c2: one row');
};

subtest 'job_ids are not lower-cased' => sub {
	my ($b) = batch_with_calls('batch-Case', 1, 0);
	my $r = cancel({ resource_id => [ 'batch-Case', 'batch-case' ] });
	is(scalar @{ $r->{json}{results} }, 2, 'two distinct ids');
	is_deeply($r->{json}{results}[0], batch_res('batch-Case', 'cancelled', 1,
		'Batch cancelled. 1 pending entries cancelled.'), 'the job_id as stored');
};

subtest 'batch before its own call, force=true: the batch cancels it' => sub {
	my ($b, $calls) = batch_with_calls('batch-l3', 5, 2);
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => [ 'batch-l3', $calls->[1] ], force => $T });
	is_deeply($r->{json}, list_answer(
		batch_res('batch-l3', 'cancelled', 5,
			'Batch cancelled. 3 pending entries cancelled. 2 running call(s) forcefully terminated.'),
		call_res($calls->[1], 'cancelled', 0, 'Call already in terminal state: cancelled'),
	), 'the call was cancelled as part of the batch');
	is(fx_history_count($t), $h0 + 1, 'one history row (the batch)');
	is_deeply([ map { call_status($_) } @$calls ], [qw(cancelled cancelled)], 'both calls cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'batch before its own call, force=false: the call is cancelled by name' => sub {
	my ($b, $calls) = batch_with_calls('batch-l4', 5, 2);
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => [ 'batch-l4', $calls->[0] ] });
	is_deeply($r->{json}, list_answer(
		batch_res('batch-l4', 'cancelled', 3, 'Batch cancelled. 3 pending entries cancelled.'
			. ' 2 active call(s) will complete naturally. Use force=true to terminate them.'),
		call_res($calls->[0], 'cancelled', 1, 'Call cancelled.'),
	), 'answer');
	is_deeply([ map { call_status($_) } @$calls ], [qw(cancelled initiated)], 'the named call only');
	is(fx_history_count($t), $h0 + 2, 'two history rows');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'call before its batch, force=true' => sub {
	my ($b, $calls) = batch_with_calls('batch-l5', 4, 2);
	my $r = cancel({ resource_id => [ $calls->[0], 'batch-l5' ], force => $T });
	is_deeply($r->{json}, list_answer(
		call_res($calls->[0], 'cancelled', 1, 'Call cancelled.'),
		batch_res('batch-l5', 'cancelled', 3,
			'Batch cancelled. 2 pending entries cancelled. 1 running call(s) forcefully terminated.'),
	), 'the batch only counts the call still active');
	is_deeply([ map { call_status($_) } @$calls ], [qw(cancelled cancelled)], 'both calls cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'two batches and calls of both' => sub {
	my ($b1, $c1) = batch_with_calls('batch-l6', 3, 1);
	my ($b2, $c2) = batch_with_calls('batch-l7', 3, 1);
	my $r = cancel({ resource_id => [ $c2->[0], 'batch-l6', 'batch-l7', $c1->[0] ], force => $T });
	is_deeply($r->{json}, list_answer(
		call_res($c2->[0], 'cancelled', 1, 'Call cancelled.'),
		batch_res('batch-l6', 'cancelled', 3,
			'Batch cancelled. 2 pending entries cancelled. 1 running call(s) forcefully terminated.'),
		batch_res('batch-l7', 'cancelled', 2, 'Batch cancelled. 2 pending entries cancelled.'),
		call_res($c1->[0], 'cancelled', 0, 'Call already in terminal state: cancelled'),
	), 'answer');
	fx_counters_ok($t, $_, 'counters equal the entry counts') for $b1, $b2;
};

subtest 'exactly 100 ids' => sub {
	my @calls = map { $_->[0] } @{ $t->psql(qq{INSERT INTO voice_call_logs (tenant_id, to_number, status)
		SELECT $tid, '+1' || g, 'running' FROM generate_series(1, 90) g RETURNING id}) };
	is(scalar @calls, 90, '90 calls');
	my @unknown = map { fx_uuid() } 1 .. 10;
	my @ids = shuffle(@calls, @unknown);
	my %is_call = map { $_ => 1 } @calls;
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => \@ids });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, list_answer(map {
		$is_call{$_} ? call_res($_, 'cancelled', 1, 'Call cancelled.') : call_res($_, 'not_found', 0, 'Call not found')
	} @ids), '100 results in order, total 90');
	is(fx_history_count($t), $h0 + 90, '90 history rows');
	is($t->psql_value(q{SELECT count(*) FROM voice_call_logs WHERE status = 'cancelled' AND id = ANY ('{}'::uuid[] || ARRAY[}
		. join(',', map { "'$_'::uuid" } @calls) . '])'), 90, 'all 90 cancelled');
};

subtest '100 ids as sent, with duplicates' => sub {
	my $c = fx_call($t, $tid, status => 'running');
	my @ids = (($c) x 50, (uc $c) x 50);
	my $r = cancel({ resource_id => \@ids });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, list_answer(call_res($c, 'cancelled', 1, 'Call cancelled.')), 'one result');
};

done_testing();
