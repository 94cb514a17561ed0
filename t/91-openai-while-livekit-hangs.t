#!/usr/bin/perl
# SPEC 6, issue 10 defect 1: a hanging LiveKit does not hold back OpenAI
# hangups.  Each provider has its own slots (outbox.concurrency each), and
# each row is recorded as its own transfer ends.  A force-cancel of calls with
# both a room and an OpenAI call, DeleteRoom hanging: every hangup reaches the
# fake, and every OpenAI row is recorded done, before the first hanging
# DeleteRoom is given up (order, not speed: outbox.timeout_ms is long); the
# LiveKit rows are retried later and every room is deleted once LiveKit is
# back.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use List::Util qw(max min);
use Time::HiRes qw(sleep time);

my $N = 24;
my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.timeout_ms' => 8000, 'outbox.concurrency' => 4, 'outbox.backoff_base_ms' => 200,
		'outbox.backoff_max_ms' => 1000, 'outbox.poll_ms' => 200, 'outbox.max_attempts' => 100 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $batch = FakeProviders::running_batch($t, $tid, 'batch-91o', $N, room => 'r91o', openai => 'rtc91o');

$fake->control(livekit => 'hang', openai => '200');
my $t0 = time;
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', timeout => 60,
	json => { resource_id => 'batch-91o', force => JSON::PP::true });
is($r->{status}, 200, 'status 200') or diag($r->{body});
is($r->{json}{cancelled_count}, $N, "$N calls cancelled");

# the first DeleteRoom requests are given up by their sender (curl timeout)
ok($t->wait_until(sub { grep { defined $_->{closed} } $fake->requests('livekit') }, timeout => 60, interval => 0.2),
	'a hanging DeleteRoom was given up');
my @lk = $fake->requests('livekit');
my $first_close = min(map { $_->{closed} } grep { defined $_->{closed} } @lk);
ok($t->wait_until(sub { scalar(() = $fake->requests('openai')) >= $N }, timeout => 60, interval => 0.2),
	"$N hangups reached the fake");
my @oa = $fake->requests('openai');
my %hung = map { $_->{call_id} => 1 } @oa;
is(scalar keys %hung, $N, "$N distinct calls hung up");
my $last_hangup = max(map { $_->{time} } @oa);
diag(sprintf 'the last hangup reached the fake %.2f s after the cancel was sent, the first DeleteRoom was'
	. ' given up after %.2f s', $last_hangup / 1000 - $t0, $first_close / 1000 - $t0);
cmp_ok($last_hangup, '<', $first_close, sprintf 'every hangup went out while DeleteRoom hung (last %d ms before'
	. ' the first DeleteRoom was given up)', $first_close - $last_hangup);

# each OpenAI row was recorded as its transfer ended, not with the round
my $recorded = $t->psql_value(q{SELECT (extract(epoch FROM max(updated_at)) * 1000)::bigint FROM termination_outbox
	WHERE provider = 'openai' AND state = 'done'});
is($t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE provider = 'openai' AND state = 'done'}), $N,
	'every OpenAI row done');
cmp_ok($recorded, '<', $first_close, sprintf 'every OpenAI row recorded done while DeleteRoom hung (%d ms before)',
	$first_close - $recorded);

# LiveKit back: its rows are retried and every room deleted, once
$fake->control(livekit => '200');
ok($t->wait_until(sub {
	$t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE provider = 'livekit' AND state = 'done'}) == $N
}, timeout => 60, interval => 0.2), "all $N LiveKit rows done once LiveKit is back");
my %ok;
$ok{ $_->{room} }++ for grep { ($_->{status} // 0) == 200 } $fake->requests('livekit');
is(scalar keys %ok, $N, "$N rooms deleted");
my %given_up = map { $_->{room} => 1 } grep { defined $_->{closed} } @lk;
is(scalar(grep { !$ok{$_} } keys %given_up), 0, 'the rooms whose DeleteRoom was given up were deleted later');
cmp_ok($t->psql_value(q{SELECT max(attempts) FROM termination_outbox WHERE provider = 'livekit'}), '>=', 2,
	'LiveKit rows retried');
is($t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state <> 'done'}), 0, 'nothing pending or failed');

done_testing();
