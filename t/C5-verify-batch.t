#!/usr/bin/perl
# SPEC 11, issue 12: the force-cancel of a 500-call batch verifies all 500
# rooms: 500 DeleteRooms by the worker, then 500 read-backs by the retry
# child (concurrently, bounded), every row done with verified_at; some rooms
# stubborn (a SIP leg stays until removed) are escalated and verified too.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(time);

my $N = 500;
my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

my $batch = FakeProviders::running_batch($t, $tid, 'batch-C5', $N, room => 'rC5');
my @stubborn = map { "rC5-$_" } grep { $_ % 50 == 0 } 1 .. $N;
$fake->control(latency_ms => 20, room_modes => { map { $_ => 'sip' } @stubborn });

my $t0 = time;
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
	json => { resource_id => 'batch-C5', force => JSON::PP::true });
is($r->{status}, 200, 'status 200') or diag($r->{body});
is($r->{json}{cancelled_count}, $N, "cancelled_count $N");

my $sql = qq{SELECT count(*) FROM termination_outbox o JOIN voice_call_logs c ON c.id = o.call_id
	WHERE c.batch_id = '$batch' AND o.state = 'done' AND o.verified_at IS NOT NULL};
ok($t->wait_until(sub { $t->psql_value($sql) == $N }, timeout => scaled(60), interval => 0.1),
	"all $N rows done with verified_at");
my $secs = time - $t0;
diag(sprintf 'force-cancel of %d calls (LiveKit 20 ms a request) to every room verified: %.2f s', $N, $secs);
is($t->psql_value(qq{SELECT count(*) FROM termination_outbox o JOIN voice_call_logs c ON c.id = o.call_id
	WHERE c.batch_id = '$batch' AND o.state <> 'done'}), 0, 'none sent, unknown or failed');

my @adm = $fake->requests('livekit_admin');
my %lists;
$lists{ $_->{room} }++ for grep { $_->{path} =~ /ListParticipants$/ && $_->{auth} eq 'ok' } @adm;
is(scalar keys %lists, $N, "every room read back ($N), with a verified roomAdmin token");
my @removed = sort map { $_->{room} } grep { $_->{path} =~ /RemoveParticipant$/ } @adm;
is_deeply(\@removed, [ sort @stubborn ], 'the stubborn rooms, and only they, escalated');
is(scalar(() = $fake->requests('livekit')), $N + @stubborn, 'DeleteRooms: one each, one more for the stubborn');
my $m = $t->metrics;
is($m->{'callstop_termination_seconds_to_silence_count{provider="livekit"}'}, $N, "the histogram counts $N");
is($m->{'callstop_termination_escalations_total{provider="livekit"}'}, scalar @stubborn, 'escalations counted');
fx_counters_ok($t, $batch, 'counters equal entry counts');

done_testing();
