#!/usr/bin/perl
# SPEC 6, 3.1: cancelling a running call deletes its LiveKit room at once,
# exactly once, with a token LiveKit accepts (HS256, iss, nbf/exp,
# video.roomCreate), and hangs up its OpenAI call; the message says so.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel status_of);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 100 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

subtest 'LiveKit room deleted once, token verified with roomCreate' => sub {
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-90-a');
	my $t0 = time;
	my $r = cancel($id);
	my $ms = (time - $t0) * 1000;
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is($r->{json}{message}, 'Call cancelled. LiveKit room terminated.', 'message');
	is($r->{json}{status}, 'cancelled', 'cancelled');
	diag(sprintf 'cancel with DeleteRoom answered in %.0f ms', $ms);

	my @lk = $fake->requests('livekit');
	is(scalar @lk, 1, 'one DeleteRoom request by the time the cancel answered');
	my $q = $lk[0];
	is($q->{method}, 'POST', 'POST');
	is($q->{path}, '/twirp/livekit.RoomService/DeleteRoom', 'Twirp DeleteRoom path');
	is($q->{auth}, 'ok', 'token passed TokenVerifier (signature, iss, nbf/exp)') or diag($q->{auth_error});
	is($q->{status}, 200, 'answered 200');
	is($q->{claims}{iss}, $fake->livekit_key, 'iss = API key');
	is($q->{claims}{video}{roomCreate}, JSON::PP::true, 'video.roomCreate = true');
	ok($q->{claims}{exp} - time <= 600 && $q->{claims}{exp} > time, 'exp short and in the future');
	ok($q->{claims}{nbf} <= time, 'nbf not in the future');
	like($q->{headers}{'content-type'}, qr{^application/json}, 'Content-Type application/json');
	is_deeply(JSON::PP->new->decode($q->{body}), { room => 'room-90-a' }, 'body {"room": name}');
	like($q->{headers}{authorization}, qr/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'Bearer JWT');

	FakeProviders::settled($t);    # done means verified (SPEC 11)
	my $s = status_of($id);
	is($s->{call}{termination}{state}, 'done', 'termination.state done');
	is_deeply([ map { [ @$_{qw(provider target state attempts)} ] } @{ $s->{call}{termination}{targets} } ],
		[ [ 'livekit', 'room-90-a', 'done', 1 ] ], 'one target: livekit, done, 1 attempt');

	# The retry child's grace period (2 s) and a few polls later: still once.
	sleep 3;
	is(scalar(() = $fake->requests('livekit')), 1, 'still exactly one DeleteRoom after 3 s');
	is(cancel($id)->{json}{message}, 'Call already in terminal state: cancelled', 'cancelling again: no-op');
	sleep 0.3;
	is(scalar(() = $fake->requests('livekit')), 1, 'and no second DeleteRoom');
};

subtest 'LiveKit room and OpenAI call: both in parallel' => sub {
	$fake->reset;
	$fake->control(delay_ms => 300, livekit => 'slow', openai => 'slow');
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-90-b', openai_call_id => 'rtc_90_b');
	my $t0 = time;
	my $r = cancel($id);
	my $ms = (time - $t0) * 1000;
	is($r->{json}{message}, 'Call cancelled. LiveKit room terminated. OpenAI call hung up.', 'message');
	cmp_ok($ms, '<', 600, sprintf('both 300 ms requests took %.0f ms together (parallel; one after the other: 600+)', $ms));
	my ($lk) = $fake->requests('livekit');
	my ($oa) = $fake->requests('openai');
	is($lk->{room}, 'room-90-b', 'DeleteRoom of the room');
	is($oa->{path}, '/v1/realtime/calls/rtc_90_b/hangup', 'hangup path');
	is($oa->{auth}, 'ok', 'Bearer key and Idempotency-Key accepted');
	like($oa->{headers}{'idempotency-key'}, qr/^[0-9a-f-]{36}$/, 'Idempotency-Key: a UUID');
	FakeProviders::settled($t);
	is(status_of($id)->{call}{termination}{state}, 'done', 'termination.state done');
	$fake->control(delay_ms => 0, livekit => '200', openai => '200');
};

# What operators write: LiveKit's ws(s):// client URL (LiveKit's server SDKs
# accept it), a trailing slash.  Neither may turn into "//twirp" or a 404
# read as "already gone".
subtest 'URL forms: ws://, trailing slash' => sub {
	(my $ws = $fake->url) =~ s{^http://}{ws://};
	$t->restart_callstopd(conf => { 'livekit.url' => "$ws/", 'openai.base_url' => $fake->url . '//' });
	$fake->reset;
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-90-c', openai_call_id => 'rtc_90_c');
	is(cancel($id)->{json}{message}, 'Call cancelled. LiveKit room terminated. OpenAI call hung up.', 'message');
	is_deeply([ map { "$_->{path} $_->{status}" } sort { $a->{provider} cmp $b->{provider} } $fake->requests ],
		[ '/twirp/livekit.RoomService/DeleteRoom 200', '/v1/realtime/calls/rtc_90_c/hangup 200' ], 'paths');
};

done_testing();
