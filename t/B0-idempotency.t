#!/usr/bin/perl
# SPEC 8, Idempotency-Key: the same cancel sent twice with a key gets the
# first answer byte for byte, with Idempotent-Replayed: true, and changes
# nothing (history, outbox, counters) - for a call whose LiveKit room is
# deleted after the commit, a batch with force, a list, and each alias
# route; the same key with another body or path is 422; a bad key is 400 in
# each family's body; the two Trillet-style paths are one route; a key is
# scoped to its tenant (the admin token for SPEC 4.3); 404 answers are
# stored, 400 / 401 / 403 are not.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup);
use FakeProviders;
use Fixtures qw(:all);

my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 100 });
my $tid = $t->tenant('acme', workspace_id => 'ws_acme');
my $other = $t->tenant('globex', workspace_id => 'ws_globex');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $key2 = $t->key(tenant => 'globex', frontend_id => 'fe1');
my $admin = $t->admin_token('--name', 'ops');
api_setup($t, key => $key);
my $T = JSON::PP::true;
my %U = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');
my %TR = ('X-API-Key' => $key, 'X-Workspace-ID' => 'ws_acme');

sub req ($method, $path, $idem, %o) {
	my %h = (%{ $o{headers} // \%U }, defined $idem ? ('Idempotency-Key' => $idem) : ());
	return $t->request($method, $path, headers => \%h, exists $o{json} ? (body => $o{json}) : ());
}

sub stored ($k) { return $t->psql_value("SELECT count(*) FROM callstop_idempotency WHERE key = '$k'") + 0 }

# The first answer runs; the repeat is it, byte for byte, and changes nothing.
sub replay_ok ($name, $method, $path, $idem, %o) {
	my $first = req($method, $path, $idem, %o);
	my $before = fx_snapshot($t);
	my $lk = scalar(() = $fake->requests('livekit'));
	my $again = req($method, $path, $idem, %o);
	subtest $name => sub {
		ok(!exists $first->{headers}{'idempotent-replayed'}, 'the first answer is not a replay');
		is($again->{status}, $first->{status}, "repeat: same status ($first->{status})");
		is($again->{body}, $first->{body}, 'repeat: the same body, byte for byte');
		is($again->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
		is_deeply(fx_snapshot($t), $before, 'nothing changed: history, outbox, calls, batches, counters');
		is(scalar(() = $fake->requests('livekit')), $lk, 'no second termination request');
		is(stored($idem), 1, 'one key stored');
		is($t->psql_value("SELECT body FROM callstop_idempotency WHERE key = '$idem'"), $first->{body},
			'the stored body is the answer the client got');
	};
	return $first;
}

# ---- the unified routes ------------------------------------------------------

my $call = fx_call($t, $tid, status => 'running', livekit_room => 'room-b0-1');
my $r = replay_ok('a call: its room deleted after the commit', POST => '/calls/cancel', 'call-1',
	json => { resource_id => $call });
is($r->{json}{message}, 'Call cancelled. LiveKit room terminated.', 'the client got the final answer');
is(scalar(() = $fake->requests('livekit')), 1, 'one DeleteRoom');
is(fx_history_count($t), 1, 'one history row');

my $b = fx_batch($t, $tid, 'batch-b0-force', 6);
my @e = fx_claim($t, $b, 'd1', 3);
my @c = map { fx_start($t, $_, 'd1', room => "room-b0-f$_") } @e[0, 1];
fx_report($t, $_, 'running') for @c;
$r = replay_ok('a batch with force', POST => '/batch/batch-cancel/batch-b0-force?force=true', 'batch-force-1');
like($r->{json}{message}, qr/^Batch cancelled\. 4 pending entries cancelled\. 2 running call\(s\) forcefully/,
	'the batch answer');
fx_counters_ok($t, $b, 'counters equal the entry counts');

my @list = map { fx_call($t, $tid, status => 'ringing') } 1 .. 2;
fx_batch($t, $tid, 'batch-b0-list', 3);
$r = replay_ok('a list', POST => '/calls/cancel', 'list-1',
	json => { resource_id => [ @list, 'batch-b0-list', '00000000-0000-4000-8000-000000000000' ] });
is($r->{json}{total_cancelled}, 5, 'the list answer');

$r = replay_ok('a 404 is stored: about the resource', POST => '/batch/batch-cancel/batch-none', 'nf-1');
is($r->{status}, 404, '404 Batch not found');

# ---- the aliases ---------------------------------------------------------------

my $hc = fx_call($t, $tid, status => 'running');
$r = replay_ok('Heppu-style DELETE /api/v1/calls/{id}', DELETE => "/api/v1/calls/$hc", 'heppu-1',
	headers => { 'X-API-Key' => $key });
is($r->{json}{message}, 'Call cancelled successfully', 'the Heppu answer');

fx_batch($t, $tid, 'batch-b0-tr', 4);
$r = replay_ok('Trillet-style DELETE /v1/api/batch-calls/{id}', DELETE => '/v1/api/batch-calls/batch-b0-tr',
	'trillet-1', headers => \%TR);
is($r->{json}{message}, 'Batch cancelled successfully', 'the Trillet answer');
subtest 'the other Trillet-style path is the same route' => sub {
	my $before = fx_snapshot($t);
	my $again = req(DELETE => '/v1/batch-calls/batch-b0-tr', 'trillet-1', headers => \%TR);
	is($again->{status}, 200, 'status 200');
	is($again->{body}, $r->{body}, 'the stored answer');
	is($again->{headers}{'idempotent-replayed'}, 'true', 'replayed');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};
fx_batch($t, $tid, 'batch-b0-tr2', 2);
replay_ok('Trillet-style DELETE /v1/batch-calls/{id}', DELETE => '/v1/batch-calls/batch-b0-tr2', 'trillet-2',
	headers => \%TR);

my $ac = fx_call($t, $other, status => 'running', openai_call_id => 'rtc_b0_1');
$r = replay_ok('admin POST /api/v1/admin/cancel/{id}', POST => '/api/v1/admin/cancel/rtc_b0_1', 'admin-1',
	headers => { 'X-Admin-Token' => $admin });
is($r->{json}{message}, 'Call rtc_b0_1 canceled', 'the admin answer');
like($t->psql_value(q{SELECT scope FROM callstop_idempotency WHERE key = 'admin-1'}), qr/^admin:\d+$/,
	'scoped to the admin token');

# ---- 422: the same key for another request ------------------------------------------

subtest 'same key, another body or path: 422, nothing changed' => sub {
	my $c2 = fx_call($t, $tid, status => 'running');
	my $before = fx_snapshot($t);
	my $x = req(POST => '/calls/cancel', 'call-1', json => { resource_id => $c2 });
	is($x->{status}, 422, 'another body: 422');
	is($x->{json}{error}{code}, 'idempotency_key_reused', 'code idempotency_key_reused');
	$x = req(POST => '/batch/batch-cancel/batch-b0-list', 'batch-force-1');
	is($x->{status}, 422, 'another path id: 422');
	$x = req(POST => '/batch/batch-cancel/batch-b0-force?force=false', 'batch-force-1');
	is($x->{status}, 422, 'another query string: 422');
	$x = req(DELETE => "/api/v1/calls/$c2", 'heppu-1', headers => { 'X-API-Key' => $key });
	is_deeply($x->{json}{error}{code}, 422, 'Heppu-style body');
	$x = req(DELETE => '/v1/api/batch-calls/batch-b0-tr2', 'trillet-1', headers => \%TR);
	is($x->{json}{error}, 'Unprocessable Entity', 'Trillet-style body');
	$x = req(POST => '/api/v1/admin/cancel/nothing', 'admin-1', headers => { 'X-Admin-Token' => $admin });
	is_deeply([ $x->{status}, $x->{json}{ok} ], [ 422, JSON::PP::false ], 'admin body');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
	is(call_status_of($c2), 'running', 'the call runs on');
};

sub call_status_of ($id) { return $t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'") }

# ---- scope -------------------------------------------------------------------------

subtest 'a key is the tenant\'s own' => sub {
	my $c3 = fx_call($t, $other, status => 'running');
	my $x = req(POST => '/calls/cancel', 'call-1', json => { resource_id => $c3 },
		headers => { 'X-API-Key' => $key2, 'X-Frontend-ID' => 'fe1' });
	is($x->{status}, 200, 'another tenant, the same key: runs');
	ok(!exists $x->{headers}{'idempotent-replayed'}, 'not a replay');
	is(call_status_of($c3), 'cancelled', 'cancelled');
	is(stored('call-1'), 2, 'two keys: one per tenant');
};

# ---- 400: bad keys; refused requests store nothing ---------------------------------

subtest 'bad key: 400 invalid_request in each family\'s body, nothing changed' => sub {
	my $c4 = fx_call($t, $tid, status => 'running');
	my $before = fx_snapshot($t);
	for my $bad ('has space', 'x' x 256, 'semi;colon', 'a/b', 'a,b') {
		my $x = req(POST => '/calls/cancel', $bad, json => { resource_id => $c4 });
		is($x->{status}, 400, "'" . substr($bad, 0, 12) . "': 400");
		is($x->{json}{error}{code}, 'invalid_request', 'invalid_request');
	}
	my $x = req(DELETE => "/api/v1/calls/$c4", '!', headers => { 'X-API-Key' => $key });
	is_deeply($x->{json}{error}{code}, 400, 'Heppu-style 400');
	$x = req(DELETE => '/v1/batch-calls/batch-b0-tr', '!', headers => \%TR);
	is_deeply([ $x->{status}, $x->{json}{error} ], [ 400, 'Bad Request' ], 'Trillet-style 400');
	$x = req(POST => "/api/v1/admin/cancel/$c4", '!', headers => { 'X-Admin-Token' => $admin });
	is_deeply([ $x->{status}, $x->{json}{ok} ], [ 400, JSON::PP::false ], 'admin 400');
	ok(length('k' x 255), 'a 255-character key is valid:');
	$x = req(POST => '/calls/cancel', 'k' x 255, json => { resource_id => [] });
	is($x->{status}, 400, '... (the empty list is the 400 here)');
	is($x->{json}{error}{message}, 'resource_id must not be an empty list', '... not the key');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
	is(stored('k' x 255), 0, 'a refused request stores nothing');
	$x = req(POST => '/calls/cancel', 'unauth-1', json => { resource_id => $c4 },
		headers => { 'X-API-Key' => 'cs_wrong', 'X-Frontend-ID' => 'fe1' });
	is($x->{status}, 401, 'an unknown API key: 401');
	$x = req(DELETE => "/api/v1/calls/$c4", 'heppu-400', headers => { 'X-API-Key' => $key2 });
	is($x->{status}, 403, 'another tenant\'s call (Heppu-style): 403');
	is(stored('unauth-1') + stored('heppu-400'), 0, '401 and 403 store nothing');
};

subtest 'without a key: as before' => sub {
	my $x = req(POST => '/calls/cancel', undef, json => { resource_id => $call });
	is($x->{json}{message}, 'Call already in terminal state: cancelled', 'the second cancel runs');
	ok(!exists $x->{headers}{'idempotent-replayed'}, 'no replay header');
};

subtest 'metrics count the stored keys' => sub {
	my $m = $t->request(GET => '/callstop-metrics')->{body};
	my ($n) = $m =~ /^callstop_idempotency_keys_stored_total (\d+)$/m;
	is($n, $t->psql_value('SELECT count(*) FROM callstop_idempotency'), 'stored_total = the rows stored');
	like($m, qr/^callstop_idempotency_keys_pruned_total 0$/m, 'none pruned');
};

done_testing;
