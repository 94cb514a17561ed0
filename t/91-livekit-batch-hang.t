#!/usr/bin/perl
# SPEC 6 ("short timeouts"), 3.1: a force-cancel of a batch whose LiveKit
# hangs answers within about twice outbox.timeout_ms however many calls it
# had (the worker stops starting requests after outbox.timeout_ms and leaves
# the rest to the retry child), and no room is ever sent by two processes at
# once: once LiveKit is back, every room is deleted exactly once.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my $N = 200;
my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.timeout_ms' => 1000, 'outbox.concurrency' => 8, 'outbox.backoff_base_ms' => 200,
		'outbox.backoff_max_ms' => 1000, 'outbox.poll_ms' => 200, 'outbox.max_attempts' => 100 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $batch = FakeProviders::running_batch($t, $tid, 'batch-91h', $N, room => 'r91h');

$fake->control(livekit => 'hang');
my $t0 = time;
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
	json => { resource_id => 'batch-91h', force => JSON::PP::true });
my $secs = time - $t0;
is($r->{status}, 200, 'status 200') or diag($r->{body});
is($r->{json}{cancelled_count}, $N, "$N calls cancelled");
# The worker gives up after outbox.timeout_ms and leaves the rest to the
# retry child: had it waited for every hanging DeleteRoom, N / 8 rounds of
# 1 s would take 25 s.  Half of that, scaled, tells the two apart on a
# loaded machine without asserting a speed.
cmp_ok($secs, '<', scaled($N / 8 / 2),
	sprintf 'answered in %.2f s: the worker did not wait for %d hanging rounds (%d s)', $secs, $N / 8, $N / 8);
is($t->psql_value(qq{SELECT count(*) FROM voice_call_logs WHERE batch_id = '$batch' AND status = 'cancelled'}), $N,
	'all cancelled');

sleep 1.5;    # the retry child has started on the rest; LiveKit comes back
$fake->control(livekit => '200');
ok($t->wait_until(sub {
	$t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state = 'done'}) == $N
}, timeout => 30, interval => 0.2), "all $N rows done once LiveKit is back");
diag(sprintf 'all done %.1f s after the cancel', time - $t0);
sleep 0.5;
my %ok;
$ok{ $_->{room} }++ for grep { ($_->{status} // 0) == 200 } $fake->requests('livekit');
is(scalar keys %ok, $N, "$N rooms deleted");
is(scalar(grep { $ok{$_} > 1 } keys %ok), 0, 'none deleted twice');
is($t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state <> 'done'}), 0, 'nothing pending or failed');

done_testing();
