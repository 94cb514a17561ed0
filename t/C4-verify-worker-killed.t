#!/usr/bin/perl
# SPEC 11, issue 12: verification belongs to the retry child, not to the
# worker that sent the DeleteRoom.  A worker SIGKILLed after its row was
# recorded sent (held there by CALLSTOP_TEST_PAUSE_AFTER_SEND_MS) and before
# the room was read back (the fake's ListParticipants answers after 1.5 s):
# the retry child still verifies it, done with verified_at.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup termination);
use FakeProviders;
use Fixtures qw(:all);
use Background qw(bg bg_result);
use Time::HiRes qw(sleep time);

plan skip_all => 'needs a callstopd built with --enable-test-hooks' unless CallstopTest->test_hooks;

my ($t, $fake) = FakeProviders->harness(workers => 2,
	env => { CALLSTOP_TEST_PAUSE_AFTER_SEND_MS => 5000 }, conf => { 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
$fake->control(latency_ms => { livekit_admin => 1500 }, room_modes => { 'room-C4' => 'sip' });
my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-C4');

my $bg = bg($t, sub { $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id },
	timeout => 20) });

my $line = $t->wait_until(sub { $t->log =~ /^(.*callstopd\[(\d+)\]: test hook: pausing \d+ ms after send.*)$/m ? $1 : 0 },
	timeout => scaled(15));
ok($line, 'the worker paused after its DeleteRoom was recorded') or BAIL_OUT('no "pausing after send" line');
my ($pid) = $line =~ /callstopd\[(\d+)\]/;
is($t->psql_value("SELECT state FROM termination_outbox WHERE call_id = '$id'"), 'sent', 'the row is sent');
is(scalar(() = grep { defined $_->{status} } $fake->requests('livekit_admin')), 0, 'no read-back answered yet');
ok(kill('KILL', $pid), "SIGKILL worker $pid");
my $status = bg_result($bg)->{status};
like($status, qr/^5\d\d$/, "the cancel's client got $status (its worker died)");

my $term;
ok($t->wait_until(sub { $term = termination($id); $term->{state} ne 'pending' }, timeout => scaled(20)),
	'verification ended');
is($term->{state}, 'done', 'termination.state done');
ok($term->{targets}[0]{verified_at}, 'verified_at set');
my @seq = map { ($_->{path} =~ m{/(\w+)$})[0] } grep { $_->{provider} =~ /^livekit/ } $fake->requests('all');
is_deeply(\@seq, [qw(DeleteRoom ListParticipants RemoveParticipant DeleteRoom ListParticipants)],
	'the retry child read back, escalated and read back again');
is(scalar(() = $fake->requests('livekit')), 2, 'two DeleteRooms: the worker\'s and the escalation\'s (no resend)');

done_testing();
