#!/usr/bin/perl
# SPEC 6: LiveKit's Twirp "not_found" (HTTP 404: the room is already gone)
# and OpenAI's 404 (the call already ended) count as done, at once, without
# a retry; GET /calls/status shows termination.state "done".

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel status_of);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.backoff_base_ms' => 200, 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

$fake->control(livekit => '404', openai => '404');

my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-94', openai_call_id => 'rtc_94');
my $r = cancel($id);
is($r->{status}, 200, 'status 200') or diag($r->{body});
is($r->{json}{message}, 'Call cancelled. LiveKit room terminated. OpenAI call hung up.',
	'message: both count as terminated');

my ($lk) = $fake->requests('livekit');
my ($oa) = $fake->requests('openai');
is($lk->{status}, 404, 'LiveKit answered 404');
is($oa->{status}, 404, 'OpenAI answered 404');

FakeProviders::settled($t);    # done means verified (SPEC 11)
my $s = status_of($id);
is($s->{call}{termination}{state}, 'done', 'termination.state done');
is_deeply([ map { [ @$_{qw(provider target state attempts)} ] } @{ $s->{call}{termination}{targets} } ],
	[ [ 'livekit', 'room-94', 'done', 1 ], [ 'openai', 'rtc_94', 'done', 1 ] ], 'both targets done in 1 attempt');

# The retry child's grace period and several polls: no second attempt.
sleep 2.8;
is(scalar(() = $fake->requests), 2, 'no retry of a 404');
is(status_of($id)->{call}{termination}{state}, 'done', 'still done');

# The heppu-style DELETE: same.
my $heppu = $t->key(tenant => 'acme', frontend_id => 'fe2');
my $id2 = fx_call($t, $tid, status => 'ringing', livekit_room => 'room-94-b');
my $d = $t->request(DELETE => "/api/v1/calls/$id2", headers => { 'x-api-key' => $heppu });
is($d->{status}, 200, 'DELETE /api/v1/calls/{id}: 200') or diag($d->{body});
FakeProviders::settled($t);
is(status_of($id2)->{call}{termination}{state}, 'done', 'its room: done (not_found)');

done_testing();
