#!/usr/bin/perl
# SPEC 11: a room that never empties.  With verify_deadline = 2 s the target
# ends unknown after escalating (RemoveParticipant, DeleteRoom again, read
# back with backoff), termination.state is failed, the metric counts it, the
# log names the call, the room and who was still there, and callstopctl
# outbox list --state unknown lists it.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel termination);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.poll_ms' => 200, 'outbox.verify_deadline' => 2 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

$fake->control(rooms => 'never');
my $m0 = $t->metrics;
my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-C2');
my $t0 = time;
is(cancel($id)->{json}{message}, 'Call cancelled. LiveKit room terminated.',
	"the cancel's message reports what LiveKit answered");
is(termination($id)->{state}, 'pending', 'pending while it is verified (sent)');

my $term;
ok($t->wait_until(sub { $term = termination($id); $term->{state} ne 'pending' }, timeout => scaled(20)),
	'verification ended');
my $secs = time - $t0;
is($term->{state}, 'failed', 'termination.state failed');
my ($tg) = @{ $term->{targets} };
is($tg->{state}, 'unknown', 'target unknown');
is($tg->{verified_at}, undef, 'no verified_at');
is($tg->{seconds_to_silence}, undef, 'no seconds_to_silence');
like($tg->{last_error}, qr/still present after \d+ escalation\(s\) and 2 s/, "last_error: $tg->{last_error}");
cmp_ok($secs, '>=', 1.9, sprintf('not before the deadline (%.2f s)', $secs));

my @adm = $fake->requests('livekit_admin');
my @lists = grep { $_->{path} =~ /ListParticipants$/ } @adm;
my @removes = grep { $_->{path} =~ /RemoveParticipant$/ } @adm;
cmp_ok(scalar @lists, '>=', 3, scalar(@lists) . ' read-backs');
cmp_ok(scalar(() = $fake->requests('livekit')), '>=', 2, 'DeleteRoom sent again');
is($removes[0]{identity}, 'sip_room-C2', 'the SIP participant removed first');
my @gaps = map { $lists[$_]{time} - $lists[ $_ - 1 ]{time} } 1 .. $#lists;
note("read-back gaps (ms): @gaps");
# the last pause is cut short by the deadline
ok(@gaps >= 3 && $gaps[-2] > $gaps[0], 'read-backs back off');

my $m1 = $t->metrics;
my $k = 'callstop_termination_unknown_total{provider="livekit"}';
is($m1->{$k} - $m0->{$k}, 1, 'callstop_termination_unknown_total counts it');
cmp_ok($m1->{'callstop_termination_escalations_total{provider="livekit"}'}, '>=', 1, 'escalations counted');
is($m1->{'callstop_termination_seconds_to_silence_count{provider="livekit"}'}, 0, 'no silence observed');

like($t->log, qr/verify: call \Q$id\E: LiveKit room room-C2 unknown after \d+ escalation\(s\): .*still there: sip_room-C2 \(SIP\), agent-room-C2 \(AGENT\)/,
	'a log line: call id, room, who was still there');

my ($rc, $out) = $t->ctl('outbox', 'list', '--state', 'unknown');
is($rc, 0, 'callstopctl outbox list --state unknown');
like($out, qr/room-C2\s+unknown/, 'lists it');
($rc, $out) = $t->ctl('outbox', 'list', '--state', 'sent');
is($rc, 0, '--state sent accepted');

sleep 1;
my $n = scalar(() = $fake->requests('all'));
sleep 1;
is(scalar(() = $fake->requests('all')), $n, 'nothing more is sent once unknown');

done_testing();
