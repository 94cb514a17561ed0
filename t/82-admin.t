#!/usr/bin/perl
# SPEC 4.3, the admin cancel, end to end through nginx:
#   POST /api/v1/admin/cancel/{call_id}   X-Admin-Token
# call_id is a call's OpenAI call id or its UUID, in any tenant.  200
# {"ok":true,...}; 404 for unknown or already ended; 401 (nginx for missing or
# malformed, callstopd for unknown or revoked).  The call gets end_reason
# admin_cancel; its history row names the admin token and the call's tenant;
# the OpenAI hangup's Idempotency-Key is admin_hangup_{call_id}_{uuid}.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup q_ from_callstopd);
use Fixtures qw(fx_snapshot);
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);

my $TRUE = JSON::PP::true;
my $FALSE = JSON::PP::false;
my $UUID = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $globex = $t->tenant('globex', workspace_id => 'ws_globex');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $admin = $t->admin_token('--name', 'ops');
like($admin, qr/^csa_[A-Za-z0-9]{40}$/, 'admin-token create prints a csa_ token');
my $admin_id = $t->psql_value("SELECT id FROM admin_tokens WHERE token_hash = sha256(convert_to('$admin', 'UTF8'))");
ok($admin_id, 'the admin token is stored by its hash');

# ---- helpers ----------------------------------------------------------------

sub insert_call (%f) {
	$f{tenant_id} //= $acme;
	$f{to_number} //= '+15550000000';
	$f{status} //= 'running';
	my @use = sort keys %f;
	return $t->psql_value('INSERT INTO voice_call_logs (' . join(', ', @use) . ') VALUES ('
		. join(', ', map { q_($f{$_}) } @use) . ') RETURNING id');
}

sub admin_cancel ($id, %h) {
	my %headers = exists $h{headers} ? %{ $h{headers} } : ('X-Admin-Token' => $admin);
	return $t->request(POST => "/api/v1/admin/cancel/$id", headers => \%headers);
}

my $NOT_FOUND = { ok => $FALSE, error => 'Call not found or already ended' };
my $UNAUTHORIZED = { ok => $FALSE, error => 'Unauthorized' };

# A successful admin cancel of call $id (tenant $tenant) named by $ref.
sub cancelled_ok ($ref, $id, $tenant, %o) {
	subtest "admin cancel of $ref" => sub {
		my $before = time;
		my $r = admin_cancel($ref);
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
		is_deeply($r->{json}, { ok => $TRUE, message => "Call $ref canceled" }, 'body');
		is_deeply($t->psql("SELECT status, end_reason, ended_at IS NOT NULL, extract(epoch FROM ended_at) >= $before - 1"
			. " FROM voice_call_logs WHERE id = '$id'"), [ [ 'cancelled', 'admin_cancel', 't', 't' ] ],
			'DB: cancelled, end_reason admin_cancel, ended_at now');
		is_deeply($t->psql('SELECT tenant_id, resource_type, call_id, force, cancelled_count, key_id, key_kind, request_id'
			. " FROM cancel_history WHERE call_id = '$id'"),
			[ [ $tenant, 'call', $id, 'f', 1, $admin_id, 'admin_token', $r->{headers}{'x-request-id'} ] ],
			"history: the call's tenant, the admin token's id, key_kind admin_token, the request id");
		my $outbox = $t->psql("SELECT provider, target, idempotency_key FROM termination_outbox WHERE call_id = '$id'"
			. ' ORDER BY provider');
		my %by = map { $_->[0] => $_ } @$outbox;
		is_deeply([ map { $_->[0] } @$outbox ], [ grep { defined $o{$_} } qw(livekit openai) ],
			'one outbox row per thing it had running');
		if (defined $o{openai}) {
			is($by{openai}[1], $o{openai}, 'OpenAI target: its call id');
			like($by{openai}[2], qr/^admin_hangup_\Q$o{openai}\E_$UUID$/,
				'Idempotency-Key: admin_hangup_{call_id}_{uuid}');
		}
		is($by{livekit}[1], $o{livekit}, 'LiveKit target: its room') if defined $o{livekit};
	};
}

# ---- by OpenAI call id and by UUID, across tenants -----------------------------------------

my $a1 = insert_call(status => 'running', openai_call_id => 'call_abc123', livekit_room => 'room-a1',
	agent_id => 'ag1', started_at => '2026-01-01T00:00:00Z');
my $g1 = insert_call(tenant_id => $globex, status => 'ringing', openai_call_id => 'call_globex_1');
my $a2 = insert_call(status => 'connecting', openai_call_id => 'call_by_uuid');
my $g2 = insert_call(tenant_id => $globex, status => 'initiated', livekit_room => 'room-g2');

cancelled_ok('call_abc123', $a1, $acme, openai => 'call_abc123', livekit => 'room-a1');
cancelled_ok('call_globex_1', $g1, $globex, openai => 'call_globex_1');
cancelled_ok($a2, $a2, $acme, openai => 'call_by_uuid');
cancelled_ok($g2, $g2, $globex, livekit => 'room-g2');

{
	my $a3 = insert_call(status => 'running', openai_call_id => 'call_upper');
	my $r = admin_cancel(uc $a3);
	is($r->{status}, 200, 'by UUID in upper case: 200') or diag($r->{body});
	is($t->psql_value("SELECT end_reason FROM voice_call_logs WHERE id = '$a3'"), 'admin_cancel', '... cancelled');
}

subtest 'admin cancel of a call of a batch: its entry is cancelled, the counters move' => sub {
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($globex, 'batch-adm', 'processing') RETURNING id");
	my $e = $t->psql_value("INSERT INTO voice_call_batch_entries (batch_id, to_number, status) VALUES ('$b', '+1', 'running') RETURNING id");
	$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b', '+2')");
	my $c = insert_call(tenant_id => $globex, status => 'running', batch_id => $b, batch_entry_id => $e,
		openai_call_id => 'call_in_batch');
	$t->psql("UPDATE voice_call_batch_entries SET call_log_id = '$c' WHERE id = $e");
	my $r = admin_cancel('call_in_batch');
	is_deeply([ $r->{status}, $r->{json} ], [ 200, { ok => $TRUE, message => 'Call call_in_batch canceled' } ], 'status 200 and body');
	is($t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e"), 'cancelled', 'entry cancelled');
	is_deeply($t->psql("SELECT status, running_count, pending_count, cancelled_count FROM voice_call_batches WHERE id = '$b'"),
		[ [ 'processing', 0, 1, 1 ] ], 'counters moved, the batch goes on');
};

{
	my $x = insert_call(status => 'running', openai_call_id => 'call_key_a');
	my $y = insert_call(status => 'running', openai_call_id => 'call_key_b');
	admin_cancel('call_key_a');
	admin_cancel($y);
	my $keys = $t->psql("SELECT idempotency_key FROM termination_outbox WHERE call_id IN ('$x', '$y') AND provider = 'openai' ORDER BY target");
	is(scalar @$keys, 2, 'two hangups queued');
	isnt($keys->[0][0], $keys->[1][0], 'each with its own Idempotency-Key');
	like($keys->[1][0], qr/^admin_hangup_call_key_b_$UUID$/, 'a call cancelled by UUID: the key names its OpenAI call id');
}

# ---- 404: unknown, already ended ----------------------------------------------------------------

{
	my @ended = map { insert_call(status => $_, openai_call_id => "call_done_$_", ended_at => '2026-01-01T00:00:00Z') }
		qw(ended completed cancelled failed no_answer);
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($acme, 'batch-not-a-call', 'processing') RETURNING id");
	$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b', '+1')");
	push @ended, $b, 'batch-not-a-call';
	my $snap = fx_snapshot($t);
	for my $ref ('call_nope', '00000000-0000-4000-8000-000000000009', 'call_abc123', $a1, 'call_globex_1',
		(map { "call_done_$_" } qw(ended completed cancelled failed no_answer)), @ended)
	{
		my $r = admin_cancel($ref);
		is_deeply([ $r->{status}, $r->{json} ], [ 404, $NOT_FOUND ], "admin cancel of $ref: 404") or diag($r->{body});
	}
	is_deeply(fx_snapshot($t), $snap, '404s: nothing changed');
}

# ---- 401 ------------------------------------------------------------------------------------

{
	my $c = insert_call(status => 'running', openai_call_id => 'call_guarded');
	my $snap = fx_snapshot($t);
	my @alnum = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);
	my $unknown = 'csa_' . join '', map { $alnum[rand @alnum] } 1 .. 40;

	my $r = admin_cancel('call_guarded', headers => {});
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'no X-Admin-Token: 401');
	ok(!from_callstopd($r, 0.3), '... from nginx');
	$r = admin_cancel('call_guarded', headers => { 'X-Admin-Token' => 'csa_short' });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'a malformed token: 401');
	$r = admin_cancel('call_guarded', headers => { 'X-Admin-Token' => $key });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'an API key in X-Admin-Token: 401');
	$r = admin_cancel('call_guarded', headers => { 'X-Admin-Token' => 'csa_' . substr($key, 4) });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'an API key renamed csa_: 401');
	ok(from_callstopd($r), '... from callstopd (well-formed, not an admin token)');
	$r = admin_cancel('call_guarded', headers => { 'x-api-key' => $key });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'a valid API key in x-api-key: 401');
	$r = admin_cancel('call_guarded', headers => { 'x-api-key' => $key, 'X-Frontend-ID' => 'fe1' });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'unified credentials: 401');
	$r = admin_cancel('call_guarded', headers => { 'X-Admin-Token' => $unknown });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'an unknown admin token: 401');
	ok(from_callstopd($r), '... from callstopd');

	my $doomed = $t->admin_token('--name', 'doomed');
	my $doomed_id = $t->psql_value("SELECT id FROM admin_tokens WHERE token_hash = sha256(convert_to('$doomed', 'UTF8'))");
	my ($rc, undef, $err) = $t->ctl('admin-token', 'revoke', $doomed_id);
	is($rc, 0, 'callstopctl admin-token revoke') or diag($err);
	sleep 1.2;    # within 1 s
	$r = admin_cancel('call_guarded', headers => { 'X-Admin-Token' => $doomed });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, $UNAUTHORIZED ], 'a revoked admin token: 401');
	ok(from_callstopd($r), '... from callstopd');

	# An admin token is no API key either.
	$r = $t->request(DELETE => "/api/v1/calls/$c", headers => { 'x-api-key' => $admin });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, { error => { message => 'Unauthorized', code => 401 } } ],
		'the admin token as a Heppu-style x-api-key: 401');
	$r = $t->request(DELETE => "/api/v1/calls/$c", headers => { 'x-api-key' => 'csk_' . substr($admin, 4) });
	is_deeply([ $r->{status}, $r->{json} ], [ 401, { error => { message => 'Unauthorized', code => 401 } } ],
		'the admin token renamed csk_: 401');
	is_deeply(fx_snapshot($t), $snap, '401s: nothing changed');

	cancelled_ok('call_guarded', $c, $acme, openai => 'call_guarded');
}

done_testing();
