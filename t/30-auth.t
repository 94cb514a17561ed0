#!/usr/bin/perl
# Authentication of the unified API (SPEC 2, SPEC 3 error table): what nginx
# refuses itself (never reaching callstopd), what callstopd refuses (unknown
# key 401, frontend mismatch 403), and a revoked key stopping within 1 s.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(credential);
use Fixtures qw(:all);
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $key_id = $t->psql_value("SELECT id FROM api_keys WHERE key_hash = sha256(convert_to('$key', 'UTF8'))");
ok($key_id, 'the key is stored by its SHA-256');
is($t->psql_value("SELECT count(*) FROM api_keys WHERE key_prefix LIKE '%' || substr('$key', 9)"), 0,
	'the key itself is not stored');

# callstopd's access lines ("req=... route=... status=...").
sub access_lines () { return scalar(() = $t->log =~ /^\S+ \[\w+\] callstopd\[\d+\]: req=/mg) }

# Send the request; then one request that does reach callstopd, wait for its
# line, and return how many lines the first request added (0 or 1).
sub lines_added ($send) {
	my $before = access_lines();
	my $r = $send->();
	my $probe = $t->api(GET => '/calls/status/' . fx_uuid(), key => $key, frontend => 'fe1');
	is($probe->{status}, 404, '(probe reached callstopd)');
	$t->wait_until(sub { access_lines() >= $before + 1 }, timeout => 5);
	sleep 0.1;
	return ($r, access_lines() - $before - 1);
}

my $call = fx_call($t, $tid, status => 'running');
my $batch = fx_batch($t, $tid, 'batch-a1', 3);

# ---- refused by nginx ---------------------------------------------------------------

my @nginx_cases = (
	[ 'no headers', {} ],
	[ 'no X-API-Key', { 'X-Frontend-ID' => 'fe1' } ],
	[ 'no X-Frontend-ID', { 'X-API-Key' => $key } ],
	[ 'empty X-Frontend-ID', { 'X-API-Key' => $key, 'X-Frontend-ID' => '' } ],
	[ 'key too short', { 'X-API-Key' => substr($key, 0, 43), 'X-Frontend-ID' => 'fe1' } ],
	[ 'key too long', { 'X-API-Key' => $key . 'a', 'X-Frontend-ID' => 'fe1' } ],
	[ 'wrong prefix', { 'X-API-Key' => 'csx_' . substr($key, 4), 'X-Frontend-ID' => 'fe1' } ],
	[ 'upper-case prefix', { 'X-API-Key' => 'CSK_' . substr($key, 4), 'X-Frontend-ID' => 'fe1' } ],
	[ 'foreign character', { 'X-API-Key' => substr($key, 0, 43) . '-', 'X-Frontend-ID' => 'fe1' } ],
	[ 'admin token as key', { 'X-API-Key' => credential('csa_'), 'X-Frontend-ID' => 'fe1' } ],
);
my $before = fx_snapshot($t);
for my $case (@nginx_cases) {
	my ($name, $headers) = @$case;
	for my $req ([ POST => '/calls/cancel', { resource_id => $call } ], [ GET => "/calls/status/$call" ],
		[ POST => '/batch/batch-cancel/batch-a1?force=true' ])
	{
		my ($method, $path, $body) = @$req;
		my ($r, $added) = lines_added(sub {
			$t->request($method, $path, headers => $headers, $body ? (body => $body) : ());
		});
		is_unified_error($r, 401, 'unauthorized', "$name: $method $path: 401");
		is($added, 0, "$name: $method $path: answered by nginx, callstopd never saw it");
	}
}
is_deeply(fx_snapshot($t), $before, 'nothing changed');

# ---- refused by callstopd -----------------------------------------------------------

subtest 'well-formed unknown key: 401 from callstopd' => sub {
	my $unknown = credential('csk_');
	for my $req ([ POST => '/calls/cancel', json => { resource_id => $call } ], [ GET => "/calls/status/$call" ],
		[ GET => '/calls/status/batch-a1' ], [ POST => '/batch/batch-cancel/batch-a1' ])
	{
		my ($method, $path, @body) = @$req;
		my ($r, $added) = lines_added(sub { $t->api($method, $path, key => $unknown, frontend => 'fe1', @body) });
		is_unified_error($r, 401, 'unauthorized', "$method $path");
		is($added, 1, "$method $path: callstopd answered");
	}
	my ($r) = lines_added(sub { $t->api(GET => "/calls/status/$call", key => $unknown, frontend => 'fe1') });
	is_unified_error($r, 401, 'unauthorized', 'the same unknown key again');
};

subtest 'frontend mismatch: 403 forbidden' => sub {
	my $snap = fx_snapshot($t);
	is_unified_error($t->api(POST => '/calls/cancel', key => $key, frontend => 'fe2', json => { resource_id => $call }),
		403, 'forbidden', 'cancel');
	is_unified_error($t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe2'), 403, 'forbidden', 'status');
	is_unified_error($t->api(POST => '/batch/batch-cancel/batch-a1', key => $key, frontend => 'FE1'), 403,
		'forbidden', 'batch-cancel, frontend id in another case');
	is_deeply(fx_snapshot($t), $snap, 'nothing changed');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'running', 'the call still runs');

	my $key2 = $t->key(tenant => 'acme', frontend_id => 'fe2');
	my $r = $t->api(GET => "/calls/status/$call", key => $key2, frontend => 'fe2');
	is($r->{status}, 200, 'a key of fe2 works for fe2 (same tenant)');
	is_unified_error($t->api(GET => "/calls/status/$call", key => $key2, frontend => 'fe1'), 403, 'forbidden',
		'... and not for fe1');
};

subtest 'the valid key works' => sub {
	my $r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
	is($r->{status}, 200, 'status 200');
	is($r->{json}{status}, 'running', 'running');
};

# ---- revocation ---------------------------------------------------------------------

subtest 'a revoked key stops working within 1 s' => sub {
	my $victim = $t->key(tenant => 'acme', frontend_id => 'fe3');
	my $vid = $t->psql_value("SELECT id FROM api_keys WHERE key_hash = sha256(convert_to('$victim', 'UTF8'))");
	my $get = sub { $t->api(GET => "/calls/status/$call", key => $victim, frontend => 'fe3')->{status} };
	# Warm the cache of every worker.
	my @warm = map { $get->() } 1 .. 8;
	is_deeply(\@warm, [ (200) x 8 ], 'the key works');

	my ($rc, $out, $err) = $t->ctl('key', 'revoke', $vid);
	my $t0 = time;
	is($rc, 0, 'callstopctl key revoke') or diag("$err$out");
	ok($t->psql_value("SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $vid") eq 't', 'revoked_at set');

	my ($first_401, $last_200);
	while (time - $t0 < 2.0) {
		my $s = $get->();
		my $now = time - $t0;
		if ($s == 200) {
			$last_200 = $now;
		} elsif ($s == 401) {
			$first_401 //= $now;
		} else {
			fail("unexpected status $s");
		}
		sleep 0.02;
	}
	diag(sprintf 'first 401 after %.3f s, last 200 after %s s', $first_401 // -1,
		defined $last_200 ? sprintf('%.3f', $last_200) : 'none');
	ok(defined $first_401 && $first_401 < 1.2, 'refused within 1.2 s');
	ok(!defined $last_200 || $last_200 < 1.2, 'no request succeeded after 1.2 s');
	is_unified_error($t->api(POST => '/calls/cancel', key => $victim, frontend => 'fe3',
		json => { resource_id => $call }), 401, 'unauthorized', 'the revoked key cannot cancel');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'running', 'the call still runs');
	is($t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1')->{status}, 200,
		'other keys still work');
};

done_testing();
