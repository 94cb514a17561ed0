#!/usr/bin/perl
# Batch cancels: POST /calls/cancel with a job_id (SPEC 3.1, the batch rows of
# the table) and POST /batch/batch-cancel/{id} (SPEC 3.3); invariants 3 and 4.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel single call_status);
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $T = JSON::PP::true;
my $F = JSON::PP::false;

my $LK = ' LiveKit not configured; room not terminated.';

sub bres ($job, $status, $count, $message) {
	return { resource_id => $job, resource_type => 'batch', status => $status, cancelled_count => $count,
		message => $message };
}

# A batch of $n entries; the dialer d1 claims $claim of them and starts calls
# for the first $start (with a LiveKit room when rooms => 1).
sub setup ($job, %o) {
	my $b = fx_batch($t, $tid, $job, $o{n});
	my @e = $o{claim} ? fx_claim($t, $b, 'd1', $o{claim}) : ();
	my @c = map { fx_start($t, $e[$_], 'd1', room => $o{rooms} ? "room-$job-$_" : undef) } 0 .. ($o{start} // 0) - 1;
	return ($b, \@e, \@c);
}

sub batch_row ($b) {
	return fx_row($t, qq{SELECT status, cancelled_at IS NOT NULL AS has_cancelled_at
		FROM voice_call_batches WHERE id = '$b'});
}

sub entry_status ($e) { return $t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e") }

# ---- pending / processing, force=false ------------------------------------------------------

subtest 'pending batch, force=false, nothing running' => sub {
	my ($b) = setup('batch-p1', n => 5);
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => 'batch-p1' });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, single(bres('batch-p1', 'cancelled', 5, 'Batch cancelled. 5 pending entries cancelled.')),
		'answer');
	is_deeply(batch_row($b), { status => 'cancelled', has_cancelled_at => $T }, 'batch cancelled, cancelled_at set');
	is_deeply(fx_counters($t, $b), { total => 5, pending => 0, claimed => 0, running => 0, completed => 0,
		failed => 0, cancelled => 5 }, 'counters');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is(fx_history_count($t), $h0 + 1, 'one history row');
	my $h = fx_history($t, batch => $b);
	is_deeply([ @{ $h->[0] }{qw(tenant_id resource_type call_id force cancelled_count request_id)} ],
		[ $tid, 'batch', undef, $F, 5, $r->{headers}{'x-request-id'} ], 'history row');
	is_deeply([ fx_claim($t, $b, 'd2', 10) ], [], 'a dialer claims nothing any more');
};

my ($pb, $pe, $pc);
subtest 'processing batch, force=false: P counts claimed-but-not-started, A calls run on' => sub {
	# 10 entries: 5 claimed, 3 of them started, one of those completed.
	($pb, $pe, $pc) = setup('batch-p2', n => 10, claim => 5, start => 3, rooms => 1);
	is(fx_report($t, $pc->[1], 'running'), 'running', 'call 2 running');
	is(fx_report($t, $pc->[2], 'completed'), 'completed', 'call 3 completed');
	is(batch_row($pb)->{status}, 'processing', 'batch processing');
	my $h0 = fx_history_count($t);

	my $r = cancel({ resource_id => 'batch-p2', force => $F });
	is_deeply($r->{json}, single(bres('batch-p2', 'cancelled', 7, 'Batch cancelled. 7 pending entries cancelled.'
		. ' 2 active call(s) will complete naturally. Use force=true to terminate them.')), 'answer');
	is_deeply(batch_row($pb), { status => 'cancelled', has_cancelled_at => $T }, 'batch cancelled');
	is_deeply([ map { call_status($_) } @$pc ], [qw(initiated running completed)], 'the calls are untouched');
	is_deeply([ map { entry_status($_) } @$pe ], [qw(running running completed cancelled cancelled)],
		'claimed-not-started entries cancelled; running ones not');
	is_deeply(fx_counters($t, $pb), { total => 10, pending => 0, claimed => 0, running => 2, completed => 1,
		failed => 0, cancelled => 7 }, 'counters');
	fx_counters_ok($t, $pb, 'counters equal the entry counts');
	is(fx_history_count($t), $h0 + 1, 'one history row');
	is_deeply([ map { [ $_->{force}, $_->{cancelled_count} ] } @{ fx_history($t, batch => $pb) } ], [ [ $F, 7 ] ],
		'history: force false, count 7');
	is($t->psql_value("SELECT count(*) FROM termination_outbox"), 0, 'nothing to terminate');
	is(fx_start($t, $pe->[3], 'd1'), undef, 'the dialer cannot start a cancelled claimed entry');
	is_deeply([ fx_claim($t, $pb, 'd1', 5) ], [], '... nor claim');
};

subtest 'cancelled batch again, force=false: already terminal, nothing changes' => sub {
	my $before = fx_snapshot($t);
	my $r = cancel({ resource_id => 'batch-p2' });
	is_deeply($r->{json}, single(bres('batch-p2', 'cancelled', 0, 'Batch already in terminal state: cancelled')),
		'answer');
	is_deeply(fx_snapshot($t), $before, 'nothing changed, no history row');
};

subtest 'cancelled batch, force=true, A > 0: terminates them, stays cancelled' => sub {
	my $p2_cancelled_at = $t->psql_value("SELECT cancelled_at FROM voice_call_batches WHERE id = '$pb'");
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => ['batch-p2'], force => $T });
	is_deeply($r->{json}, { results => [ bres('batch-p2', 'cancelled', 2,
		'Batch already cancelled. 2 running call(s) forcefully terminated.') ], total_cancelled => 2 }, 'answer');
	is(batch_row($pb)->{status}, 'cancelled', 'batch still cancelled');
	is($t->psql_value("SELECT cancelled_at FROM voice_call_batches WHERE id = '$pb'"), $p2_cancelled_at,
		'cancelled_at unchanged');
	is_deeply([ map { call_status($_) } @$pc ], [qw(cancelled cancelled completed)], 'active calls cancelled');
	is_deeply([ map { entry_status($_) } @$pe ], [qw(cancelled cancelled completed cancelled cancelled)],
		'their entries cancelled');
	fx_counters_ok($t, $pb, 'counters equal the entry counts');
	is(fx_history_count($t), $h0 + 1, 'one history row');
	is_deeply([ map { [ $_->{force}, $_->{cancelled_count} ] } @{ fx_history($t, batch => $pb) } ],
		[ [ $F, 7 ], [ $T, 2 ] ], 'history: the second row is force true, count 2');
	is_deeply([ map { [ $_->{provider}, $_->{state} ] } map { @{ fx_outbox($t, $_) } } @$pc ],
		[ [ livekit => 'failed' ], [ livekit => 'failed' ] ], 'each terminated room has an outbox row');

	my $before = fx_snapshot($t);
	$r = cancel({ resource_id => 'batch-p2', force => $T });
	is_deeply($r->{json}, single(bres('batch-p2', 'cancelled', 0, 'Batch already in terminal state: cancelled')),
		'force=true with nothing running: already terminal');
	is_deeply(fx_snapshot($t), $before, '... nothing changed');
};

# ---- pending / processing, force=true -------------------------------------------------------

subtest 'processing batch, force=true: P + A' => sub {
	my ($b, $e, $c) = setup('batch-f1', n => 6, claim => 3, start => 2, rooms => 1);
	fx_report($t, $c->[0], 'ringing');
	my $h0 = fx_history_count($t);
	my $r = cancel({ resource_id => 'batch-f1', force => $T });
	is_deeply($r->{json}, single(bres('batch-f1', 'cancelled', 6,
		'Batch cancelled. 4 pending entries cancelled. 2 running call(s) forcefully terminated.')), 'answer');
	is_deeply(batch_row($b), { status => 'cancelled', has_cancelled_at => $T }, 'batch cancelled');
	is_deeply([ map { call_status($_) } @$c ], [qw(cancelled cancelled)], 'the calls are cancelled');
	is($t->psql_value("SELECT count(*) FROM voice_call_logs WHERE id IN ('$c->[0]', '$c->[1]')"
		. " AND ended_at IS NOT NULL AND end_reason IS NOT NULL"), 2, '... with ended_at and end_reason');
	is_deeply(fx_counters($t, $b), { total => 6, pending => 0, claimed => 0, running => 0, completed => 0,
		failed => 0, cancelled => 6 }, 'every entry cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is(fx_history_count($t), $h0 + 1, 'one history row (the batch)');
	is_deeply([ map { [ $_->{force}, $_->{cancelled_count} ] } @{ fx_history($t, batch => $b) } ], [ [ $T, 6 ] ],
		'history: force true, count 6');
	is_deeply([ map { $_->{state} } map { @{ fx_outbox($t, $_) } } @$c ], [qw(failed failed)],
		'outbox rows for the rooms');
};

subtest 'pending batch, force=true, nothing running: no last sentence' => sub {
	my ($b) = setup('batch-f2', n => 3);
	my $r = cancel({ resource_id => 'batch-f2', force => $T });
	is_deeply($r->{json}, single(bres('batch-f2', 'cancelled', 3, 'Batch cancelled. 3 pending entries cancelled.')),
		'answer');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'processing batch, all entries started, force=false: P = 0' => sub {
	my ($b, $e, $c) = setup('batch-f3', n => 2, claim => 2, start => 2);
	my $r = cancel({ resource_id => 'batch-f3' });
	is_deeply($r->{json}, single(bres('batch-f3', 'cancelled', 0, 'Batch cancelled. 0 pending entries cancelled.'
		. ' 2 active call(s) will complete naturally. Use force=true to terminate them.')), 'answer');
	is(batch_row($b)->{status}, 'cancelled', 'batch cancelled');
	is(scalar @{ fx_history($t, batch => $b) }, 1, 'a state change: one history row');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'empty pending batch' => sub {
	my ($b) = setup('batch-empty', n => 0);
	my $r = cancel({ resource_id => 'batch-empty' });
	is_deeply($r->{json}, single(bres('batch-empty', 'cancelled', 0, 'Batch cancelled. 0 pending entries cancelled.')),
		'answer');
	is(batch_row($b)->{status}, 'cancelled', 'batch cancelled');
};

# ---- stopped ---------------------------------------------------------------------------------

subtest 'stopped batch with running calls' => sub {
	my ($b, $e, $c) = setup('batch-s1', n => 4, claim => 2, start => 2);
	$t->psql(qq{UPDATE voice_call_batches SET status = 'stopped', cancelled_at = now() - interval '1 hour'
		WHERE id = '$b'});
	my $stopped_at = $t->psql_value("SELECT cancelled_at FROM voice_call_batches WHERE id = '$b'");

	my $before = fx_snapshot($t);
	my $r = cancel({ resource_id => 'batch-s1', force => $F });
	is_deeply($r->{json}, single(bres('batch-s1', 'stopped', 0, 'Batch already in terminal state: stopped')),
		'force=false: already terminal');
	is_deeply(fx_snapshot($t), $before, '... nothing changed');

	my $h0 = fx_history_count($t);
	$r = cancel({ resource_id => 'batch-s1', force => $T });
	is_deeply($r->{json}, single(bres('batch-s1', 'stopped', 2,
		'Batch already cancelled. 2 running call(s) forcefully terminated.')), 'force=true: terminated');
	is(batch_row($b)->{status}, 'stopped', "'stopped' stays 'stopped'");
	is($t->psql_value("SELECT cancelled_at FROM voice_call_batches WHERE id = '$b'"), $stopped_at,
		'cancelled_at unchanged');
	is_deeply([ map { call_status($_) } @$c ], [qw(cancelled cancelled)], 'calls cancelled');
	is_deeply([ map { entry_status($_) } @$e ], [qw(cancelled cancelled)], 'their entries cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is(fx_history_count($t), $h0 + 1, 'one history row');

	$before = fx_snapshot($t);
	$r = cancel({ resource_id => 'batch-s1', force => $T });
	is_deeply($r->{json}, single(bres('batch-s1', 'stopped', 0, 'Batch already in terminal state: stopped')),
		'force=true, nothing left: already terminal');
	is_deeply(fx_snapshot($t), $before, '... nothing changed');
};

# ---- other terminal states -------------------------------------------------------------------

for my $state (qw(completed failed)) {
	subtest "$state batch" => sub {
		my $b = fx_batch($t, $tid, "batch-$state", 2, status => $state);
		# An active call under a terminal batch: force does not apply here.
		my $c = fx_call($t, $tid, status => 'running', batch_id => $b);
		for my $force ($F, $T) {
			my $before = fx_snapshot($t);
			my $r = cancel({ resource_id => "batch-$state", force => $force });
			is_deeply($r->{json}, single(bres("batch-$state", $state, 0, "Batch already in terminal state: $state")),
				"force=$force: answer");
			is_deeply(fx_snapshot($t), $before, '... nothing changed');
		}
		is(call_status($c), 'running', 'its call was not touched');
	};
}

subtest 'unknown batch' => sub {
	my $before = fx_snapshot($t);
	for my $force ($F, $T) {
		my $r = cancel({ resource_id => 'batch-nope', force => $force });
		is_deeply($r->{json}, single(bres('batch-nope', 'not_found', 0, 'Batch not found')), "force=$force");
	}
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

# ---- POST /batch/batch-cancel/{batch_id} (SPEC 3.3) ----------------------------------------------

sub bc ($id, %o) {
	return $t->api(POST => "/batch/batch-cancel/$id", key => $key, frontend => 'fe1', %o);
}

sub bc_answer ($b, $job, $status, $count, $message) {
	return { batch_id => $b, job_id => $job, status => $status, cancelled_count => $count, message => $message };
}

subtest 'batch-cancel by job_id, no body, no Content-Type' => sub {
	my ($b, $e, $c) = setup('batch-o1', n => 5, claim => 2, start => 1);
	my $r = bc('batch-o1');
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, bc_answer($b, 'batch-o1', 'cancelled', 4, 'Batch cancelled. 4 pending entries cancelled.'
		. ' 1 active call(s) will complete naturally. Use force=true to terminate them.'),
		'answer; force defaults to false');
	is(call_status($c->[0]), 'initiated', 'the call runs on');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is_deeply([ map { [ $_->{force}, $_->{cancelled_count}, $_->{request_id} ] } @{ fx_history($t, batch => $b) } ],
		[ [ $F, 4, $r->{headers}{'x-request-id'} ] ], 'one history row');

	$r = bc('batch-o1?force=1');
	is_deeply($r->{json}, bc_answer($b, 'batch-o1', 'cancelled', 1,
		'Batch already cancelled. 1 running call(s) forcefully terminated.'), '?force=1 on the cancelled batch');
	is(call_status($c->[0]), 'cancelled', 'the call is cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');

	my $before = fx_snapshot($t);
	$r = bc('batch-o1?force=true');
	is_deeply($r->{json}, bc_answer($b, 'batch-o1', 'cancelled', 0, 'Batch already in terminal state: cancelled'),
		'again: already terminal');
	is_deeply(fx_snapshot($t), $before, '... nothing changed');
};

for my $case ([ 'by UUID', sub ($b) { $b } ], [ 'by upper-case UUID', sub ($b) { uc $b } ]) {
	my ($name, $id_of) = @$case;
	subtest "batch-cancel $name, ?force=true" => sub {
		(my $job = "batch-o2-$name") =~ s/\W/-/g;
		my ($b, $e, $c) = setup($job, n => 3, claim => 1, start => 1);
		my $r = bc($id_of->($b) . '?force=true');
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply($r->{json}, bc_answer($b, $job, 'cancelled', 3,
			'Batch cancelled. 2 pending entries cancelled. 1 running call(s) forcefully terminated.'), 'answer');
		is(call_status($c->[0]), 'cancelled', 'the call is cancelled');
		fx_counters_ok($t, $b, 'counters equal the entry counts');
	};
}

for my $case (
	[ '?force=false', 'batch-o3?force=false', {}, 0 ],
	[ '?force=0', 'batch-o4?force=0', {}, 0 ],
	[ 'JSON body {"force":true}', 'batch-o5', { json => { force => $T } }, 1 ],
	[ 'JSON body {"force":false}', 'batch-o6', { json => { force => $F } }, 0 ],
	[ 'JSON body {}', 'batch-o7', { json => {} }, 0 ],
	[ 'query and body agree (true)', 'batch-o8?force=true', { json => { force => $T } }, 1 ],
	[ 'query and body agree (0/false)', 'batch-o9?force=0', { json => { force => $F } }, 0 ],
	[ 'charset parameter', 'batch-o10', { body => '{"force": true}', content_type => 'application/json; charset=utf-8' }, 1 ])
{
	my ($name, $path, $opts, $force) = @$case;
	subtest "batch-cancel, $name" => sub {
		(my $job = $path) =~ s/\?.*//;
		my ($b, $e, $c) = setup($job, n => 3, claim => 1, start => 1);
		my $r = bc($path, %$opts);
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply($r->{json}, $force
			? bc_answer($b, $job, 'cancelled', 3,
				'Batch cancelled. 2 pending entries cancelled. 1 running call(s) forcefully terminated.')
			: bc_answer($b, $job, 'cancelled', 2, 'Batch cancelled. 2 pending entries cancelled.'
				. ' 1 active call(s) will complete naturally. Use force=true to terminate them.'),
			$force ? 'force true' : 'force false');
		is(call_status($c->[0]), $force ? 'cancelled' : 'initiated', 'the call');
		is_deeply([ map { $_->{force} } @{ fx_history($t, batch => $b) } ], [ $force ? $T : $F ], 'history force');
		fx_counters_ok($t, $b, 'counters equal the entry counts');
	};
}

subtest 'batch-cancel: JSON types' => sub {
	my ($b) = setup('batch-types', n => 2);
	my $want = { batch_id => 'string', job_id => 'string', status => 'string', cancelled_count => 'number',
		message => 'string' };
	is_deeply(fx_types(bc('batch-types')->{body}), $want, 'cancelled');
	is_deeply(fx_types(bc('batch-types')->{body}), $want, 'already terminal');
};

subtest 'batch-cancel, bad force' => sub {
	my ($b) = setup('batch-o11', n => 3, claim => 1, start => 1);
	my $before = fx_snapshot($t);
	is_unified_error(bc('batch-o11?force=true', json => { force => $F }), 400, 'invalid_request',
		'?force=true with {"force":false}');
	is_unified_error(bc('batch-o11?force=0', json => { force => $T }), 400, 'invalid_request',
		'?force=0 with {"force":true}');
	is_unified_error(bc('batch-o11?force=yes'), 400, 'invalid_request', '?force=yes');
	is_unified_error(bc('batch-o11', json => { force => 'true' }), 400, 'invalid_request', '{"force":"true"}');
	is_unified_error(bc('batch-o11', body => '{"force":true}', content_type => 'text/plain'), 415,
		'unsupported_media_type', 'JSON body as text/plain');
	is_unified_error(bc('batch-o11', body => '{"force":true}'), 415, 'unsupported_media_type',
		'a body without Content-Type');
	is_unified_error(bc('batch-o11', body => '{"force":', content_type => 'application/json'), 400,
		'invalid_json', 'a body that is not JSON');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

subtest 'batch-cancel, terminal and unknown' => sub {
	my $b = fx_batch($t, $tid, 'batch-o12', 1, status => 'completed');
	my $before = fx_snapshot($t);
	my $r = bc('batch-o12?force=true');
	is_deeply($r->{json}, bc_answer($b, 'batch-o12', 'completed', 0, 'Batch already in terminal state: completed'),
		'completed batch');
	is_unified_error(bc('batch-unknown'), 404, 'not_found', 'unknown job_id');
	is_unified_error(bc(fx_uuid()), 404, 'not_found', 'unknown UUID');
	is_unified_error(bc('not-a-batch'), 404, 'not_found', 'neither a job_id nor a UUID');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

done_testing();
