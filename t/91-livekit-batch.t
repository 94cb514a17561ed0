#!/usr/bin/perl
# SPEC 6, 3.1: a force-cancel of a batch with 500 running calls deletes 500
# LiveKit rooms through libcurl multi (bounded concurrency); with LiveKit
# answering in 50 ms each, the request completes in under 2 s.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(time);

my $N = 500;
my ($t, $fake) = FakeProviders->harness(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

my $batch = FakeProviders::running_batch($t, $tid, 'batch-91', $N, room => 'r91');
is($t->psql_value(qq{SELECT count(*) FROM voice_call_logs WHERE batch_id = '$batch' AND status = 'running'}), $N,
	"$N running calls");

$fake->control(livekit => 'slow', delay_ms => 50);
my $t0 = time;
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
	json => { resource_id => 'batch-91', force => JSON::PP::true });
my $secs = time - $t0;
diag(sprintf 'force-cancel of %d running calls, LiveKit at 50 ms each: %.3f s (%.0f rooms/s)', $N, $secs,
	$N / $secs);
is($r->{status}, 200, 'status 200') or diag($r->{body});
is($r->{json}{cancelled_count}, $N, "cancelled_count $N");
is($r->{json}{message}, "Batch cancelled. 0 pending entries cancelled. $N running call(s) forcefully terminated.",
	'message');
# in parallel, not one room after another: in sequence, N rooms at 50 ms
# would take N * 0.05 s (25 s); half of that, scaled, tells them apart
cmp_ok($secs, '<', scaled($N * 0.05 / 2), sprintf 'the rooms were deleted in parallel (%.2f s)', $secs);

my @lk = $fake->requests('livekit');
is(scalar @lk, $N, "$N DeleteRoom requests by the time it answered");
is(scalar(grep { $_->{auth} eq 'ok' && $_->{status} == 200 } @lk), $N, 'all verified and answered 200');
my %rooms = map { $_->{room} => 1 } @lk;
is(scalar keys %rooms, $N, "$N distinct rooms");
is_deeply([ sort keys %rooms ], [ sort map { "r91-$_" } 1 .. $N ], 'exactly the batch\'s rooms');
FakeProviders::settled($t);    # done means verified (SPEC 11)
is($t->psql_value(qq{SELECT count(*) FROM termination_outbox o JOIN voice_call_logs c ON c.id = o.call_id
	WHERE c.batch_id = '$batch' AND o.state = 'done' AND o.attempts = 1}), $N, "$N outbox rows done in 1 attempt");
fx_counters_ok($t, $batch, 'counters equal entry counts');

done_testing();
