#!/usr/bin/perl
# SPEC 4.3, 6: the admin cancel hangs up the OpenAI call with
# Idempotency-Key admin_hangup_{call_id}_{uuid}; a failed hangup never fails
# the request, is retried by the retry child, and every retry reuses the key.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.backoff_base_ms' => 200, 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $admin = $t->admin_token;
my $UUID = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

sub admin_cancel ($id) {
	return $t->request(POST => "/api/v1/admin/cancel/$id", headers => { 'X-Admin-Token' => $admin });
}

sub hangups ($call) {
	return grep { ($_->{call_id} // '') eq $call } $fake->requests('openai');
}

subtest 'hangup answered 200 at once' => sub {
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-97-a', openai_call_id => 'rtc_97_a');
	my $r = admin_cancel('rtc_97_a');
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, { ok => JSON::PP::true, message => 'Call rtc_97_a canceled' }, 'answer');
	my @h = hangups('rtc_97_a');
	is(scalar @h, 1, 'one hangup');
	is($h[0]{path}, '/v1/realtime/calls/rtc_97_a/hangup', 'path');
	is($h[0]{auth}, 'ok', 'Bearer key accepted');
	like($h[0]{headers}{'idempotency-key'}, qr/^admin_hangup_rtc_97_a_$UUID$/,
		"Idempotency-Key $h[0]{headers}{'idempotency-key'}");
	my @lk = grep { ($_->{room} // '') eq 'room-97-a' } $fake->requests('livekit');
	is(scalar @lk, 1, 'its LiveKit room deleted');
	is($lk[0]{auth}, 'ok', 'with a verified token');
	is_deeply(fx_row($t, "SELECT status, end_reason FROM voice_call_logs WHERE id = '$id'"),
		{ status => 'cancelled', end_reason => 'admin_cancel' }, 'cancelled, end_reason admin_cancel');
};

subtest 'hangup fails (500), then succeeds: the retry reuses the key' => sub {
	$fake->reset;
	$fake->control(openai => [qw(500 500 200)]);
	my $id = fx_call($t, $tid, status => 'running', openai_call_id => 'rtc_97_b');
	my $r = admin_cancel('rtc_97_b');
	is($r->{status}, 200, 'a failed hangup does not fail the request') or diag($r->{body});
	is_deeply($r->{json}, { ok => JSON::PP::true, message => 'Call rtc_97_b canceled' }, 'answer');
	like($t->log, qr/\[warn\] .*outbox \d+: openai rtc_97_b: HTTP 500.*retry/, 'the failure is logged');
	my @h;
	ok($t->wait_until(sub { @h = grep { $_->{status} } hangups('rtc_97_b'); @h >= 3 }, timeout => 10),
		'retried until answered 200');
	is_deeply([ map { $_->{status} } @h ], [ 500, 500, 200 ], 'answers 500, 500, 200');
	my $k = $h[0]{headers}{'idempotency-key'};
	like($k, qr/^admin_hangup_rtc_97_b_$UUID$/, "Idempotency-Key $k");
	is_deeply([ map { $_->{headers}{'idempotency-key'} } @h ], [ ($k) x 3 ], 'the same key on every retry');
	is($t->psql_value("SELECT idempotency_key FROM termination_outbox WHERE call_id = '$id'"), $k,
		'the key stored in the outbox row');
	ok($t->wait_until(sub { $t->psql_value("SELECT state FROM termination_outbox WHERE call_id = '$id'") eq 'done' },
		timeout => 5), 'outbox row done');
};

subtest 'admin cancel by call UUID: key names the OpenAI call id' => sub {
	$fake->reset;
	my $id = fx_call($t, $tid, status => 'ringing', openai_call_id => 'rtc_97_c');
	my $r = admin_cancel($id);
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	my @h = hangups('rtc_97_c');
	is(scalar @h, 1, 'one hangup');
	like($h[0]{headers}{'idempotency-key'}, qr/^admin_hangup_rtc_97_c_$UUID$/, 'key');
	is(admin_cancel($id)->{status}, 404, 'again: 404 (already ended)');
	is(scalar(() = hangups('rtc_97_c')), 1, 'and no second hangup');
};

done_testing();
