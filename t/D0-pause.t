#!/usr/bin/perl
# Pause and resume a batch (SPEC 10.1): POST /batch/{id}/pause and /resume,
# with active_calls finish and hangup; codes, bodies and messages exactly;
# claimed entries released; counters equal entries; the dialer functions
# refuse a paused batch; history rows; a cancel of a paused batch (SPEC 3.1);
# the Trillet-style answer says "paused"; terminal, unknown and other
# tenants' batches; 400 on bad input with nothing changed; 401/403.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Api qw(api_setup api q_);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme', workspace_id => 'ws_acme');
my $other = $t->tenant('beta', workspace_id => 'ws_beta');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $kb = $t->key(tenant => 'beta', frontend_id => 'fe1');
api_setup($t, key => $key);

sub pause ($id, $body = undef) { return api(POST => "/batch/$id/pause", defined $body ? (json => $body) : ()) }
sub resume ($id) { return api(POST => "/batch/$id/resume") }
sub batch_status ($b) { return $t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'") }

sub is_answer ($r, $want, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	subtest $name => sub {
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply($r->{json}, $want, 'body') or diag($r->{body});
		is_deeply(fx_types($r->{body}), { batch_id => 'string', job_id => 'string', status => 'string',
			released_count => 'number', terminated_count => 'number', message => 'string' }, 'JSON types');
	};
}

subtest 'pause, finish: claimed entries released, active calls run on, dialers refused' => sub {
	my $b = fx_batch($t, $tid, 'batch-p1', 10);
	my @e = fx_claim($t, $b, 'd1', 4);
	my $c = fx_start($t, $e[0], 'd1');
	fx_report($t, $c, 'running');
	my $h0 = scalar @{ fx_history($t, batch => $b) };

	my $paused = pause('batch-p1');
	is_answer($paused, { batch_id => $b, job_id => 'batch-p1', status => 'paused', released_count => 3,
		terminated_count => 0, message => 'Batch paused. 3 claimed entries released. 1 active call(s) will complete naturally.' },
		'answer');
	is(batch_status($b), 'paused', 'batch paused');
	is_deeply(fx_entry_counts($t, $b), { total => 10, pending => 9, claimed => 0, running => 1, completed => 0,
		failed => 0, cancelled => 0 }, 'the 3 claimed entries are pending again; the running one runs');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$c'"), 'running', 'the active call runs on');
	is(scalar(fx_claim($t, $b, 'd2', 5)), 0, 'callstop_claim_entries returns nothing for a paused batch');
	is(fx_start($t, $e[1], 'd1'), undef, 'callstop_start_call returns NULL for a released entry');
	is(batch_status($b), 'paused', 'still paused after the refused claims');
	my $h = fx_history($t, batch => $b);
	is(scalar @$h, $h0 + 1, 'one history row');
	is_deeply([ @{ $h->[-1] }{qw(action force cancelled_count route key_id request_id)} ],
		[ 'pause', JSON::PP::false, 0, 'batch.pause', $t->psql_value('SELECT id FROM api_keys WHERE tenant_id = ' . $tid) + 0,
			$paused->{headers}{'x-request-id'} ], 'history: pause, by the key, its request id');

	is_answer(pause('batch-p1'), { batch_id => $b, job_id => 'batch-p1', status => 'paused', released_count => 0,
		terminated_count => 0, message => 'Batch already paused.' }, 'pause of a paused batch: no-op');
	is(scalar @{ fx_history($t, batch => $b) }, $h0 + 1, 'the no-op wrote no history');

	my $st = api(GET => '/calls/status/batch-p1')->{json};
	is($st->{status}, 'paused', 'status route: paused');
	is($st->{batch}{history}[-1]{action}, 'pause', 'status route: history shows the pause');

	my $tr = $t->request(GET => '/v1/api/batch-calls/batch-p1', headers => { 'x-api-key' => $key, 'x-workspace-id' => 'ws_acme' });
	is($tr->{json}{status}, 'paused', 'Trillet-style GET reports paused');

	is_answer(resume($b), { batch_id => $b, job_id => 'batch-p1', status => 'processing', released_count => 0,
		terminated_count => 0, message => 'Batch resumed.' }, 'resume by UUID: processing (entries were claimed)');
	is(scalar @{ fx_history($t, batch => $b) }, $h0 + 2, 'one history row for the resume');
	is(fx_history($t, batch => $b)->[-1]{action}, 'resume', 'history: resume');
	is(scalar(fx_claim($t, $b, 'd2', 5)), 5, 'claims go on after the resume');
	is_answer(resume('batch-p1'), { batch_id => $b, job_id => 'batch-p1', status => 'processing', released_count => 0,
		terminated_count => 0, message => 'Batch not paused.' }, 'resume of an active batch: no-op');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'pause, hangup: active calls cancelled and terminated as with force' => sub {
	my $b = fx_batch($t, $tid, 'batch-p2', 6);
	my @e = fx_claim($t, $b, 'd1', 3);
	my @c = map { fx_start($t, $_, 'd1') } @e[0, 1];
	is_answer(pause('batch-p2', { active_calls => 'hangup' }), { batch_id => $b, job_id => 'batch-p2', status => 'paused',
		released_count => 1, terminated_count => 2,
		message => 'Batch paused. 1 claimed entries released. 2 active call(s) terminated.' }, 'answer');
	is($t->psql_value(sprintf q{SELECT count(*) FROM voice_call_logs WHERE id IN ('%s', '%s') AND status = 'cancelled'}, @c),
		2, 'both calls cancelled');
	is_deeply(fx_entry_counts($t, $b), { total => 6, pending => 4, claimed => 0, running => 0, completed => 0,
		failed => 0, cancelled => 2 }, 'their entries cancelled, the claimed one pending');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	my $h = fx_history($t, batch => $b)->[-1];
	is_deeply([ @$h{qw(action force cancelled_count)} ], [ 'pause', JSON::PP::true, 2 ], 'history: pause, hangup, 2');
};

subtest 'pause with nothing running; resume of a never-claimed batch is pending' => sub {
	my $b = fx_batch($t, $tid, 'batch-p3', 3);
	is_answer(pause('batch-p3', { active_calls => 'finish' }), { batch_id => $b, job_id => 'batch-p3', status => 'paused',
		released_count => 0, terminated_count => 0, message => 'Batch paused. 0 claimed entries released.' }, 'answer');
	is_answer(resume('batch-p3'), { batch_id => $b, job_id => 'batch-p3', status => 'pending', released_count => 0,
		terminated_count => 0, message => 'Batch resumed.' }, 'resume: pending');
};

subtest 'cancel of a paused batch works as SPEC 3.1' => sub {
	my $b = fx_batch($t, $tid, 'batch-p4', 5);
	my @e = fx_claim($t, $b, 'd1', 2);
	fx_start($t, $e[0], 'd1');
	is(pause('batch-p4')->{status}, 200, 'paused');
	my $r = api(POST => '/calls/cancel', json => { resource_id => 'batch-p4' });
	is($r->{status}, 200, 'status 200');
	is($r->{json}{status}, 'cancelled', 'cancelled');
	is($r->{json}{message}, 'Batch cancelled. 4 pending entries cancelled. 1 active call(s) will complete naturally.'
		. ' Use force=true to terminate them.', 'message');
	is($r->{json}{cancelled_count}, 4, 'cancelled_count');
	is(batch_status($b), 'cancelled', 'batch cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is_unified_error(resume('batch-p4'), 409, 'invalid_state', 'resume of the cancelled batch',
		message => 'Batch already in terminal state: cancelled');
	my $tb = fx_batch($t, $tid, 'batch-p5', 2);
	is(pause('batch-p5')->{status}, 200, 'paused');
	my $tr = $t->request(DELETE => '/v1/api/batch-calls/batch-p5', headers => { 'x-api-key' => $key, 'x-workspace-id' => 'ws_acme' });
	is($tr->{json}{status}, 'cancelled', 'Trillet-style DELETE of a paused batch cancels it');
	is($tr->{json}{message}, 'Batch cancelled successfully', 'Trillet message');
};

subtest 'terminal, unknown and other tenants\' batches' => sub {
	fx_batch($t, $tid, 'batch-done', 0, status => 'completed');
	my $bb = fx_batch($t, $other, 'batch-theirs', 3);
	my $before = fx_snapshot($t);
	is_unified_error(pause('batch-done'), 409, 'invalid_state', 'pause of a completed batch',
		message => 'Batch already in terminal state: completed');
	is_unified_error(resume('batch-done'), 409, 'invalid_state', 'resume of a completed batch',
		message => 'Batch already in terminal state: completed');
	is_unified_error(pause('batch-nope'), 404, 'not_found', 'pause of an unknown batch', message => 'Batch not found');
	is_unified_error(resume('batch-nope'), 404, 'not_found', 'resume of an unknown batch', message => 'Batch not found');
	is_unified_error(pause('batch-theirs'), 404, 'not_found', "another tenant's batch by job_id");
	is_unified_error(pause($bb), 404, 'not_found', "another tenant's batch by UUID");
	is_unified_error(resume($bb), 404, 'not_found', "resume of another tenant's batch");
	is_unified_error(pause(fx_uuid()), 404, 'not_found', 'an unknown UUID');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

subtest 'bad input: 400, nothing changed; 401, 403, 405' => sub {
	my $b = fx_batch($t, $tid, 'batch-p6', 3);
	my $before = fx_snapshot($t);
	is_unified_error(pause('batch-p6', { active_calls => 'kill' }), 400, 'invalid_request', 'active_calls kill');
	is_unified_error(pause('batch-p6', { active_calls => JSON::PP::true }), 400, 'invalid_request', 'active_calls true');
	is_unified_error(pause('batch-p6', [1]), 400, 'invalid_request', 'a list body');
	is_unified_error(api(POST => '/batch/batch-p6/pause', body => '{"active_calls":', content_type => 'application/json'),
		400, 'invalid_json', 'bad JSON');
	is_unified_error(api(POST => '/batch/batch-p6/pause', body => '{}', content_type => 'text/plain'), 415,
		'unsupported_media_type', 'not JSON');
	is_unified_error($t->api(POST => '/batch/batch-p6/pause', frontend => 'fe1'), 401, 'unauthorized', 'no key');
	is_unified_error($t->api(POST => '/batch/batch-p6/pause', key => 'csk_' . ('x' x 40), frontend => 'fe1'), 401,
		'unauthorized', 'unknown key');
	is_unified_error($t->api(POST => '/batch/batch-p6/resume', key => $key, frontend => 'fe2'), 403, 'forbidden',
		'wrong frontend');
	my $r = api(GET => '/batch/batch-p6/pause');
	is_unified_error($r, 405, 'method_not_allowed', 'GET');
	is($r->{headers}{allow}, 'POST', 'Allow: POST');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
	is(batch_status($b), 'pending', 'still pending');
	is($t->api(POST => '/batch/batch-p6/pause', key => $kb, frontend => 'fe1')->{status}, 404,
		"beta's key does not see it");
};

done_testing();
