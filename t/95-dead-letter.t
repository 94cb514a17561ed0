#!/usr/bin/perl
# SPEC 6: any 4xx other than "already gone" (bad credentials, bad request) is
# a permanent failure, dead-lettered at once with its status and body as
# last_error; 5xx are retried until outbox.max_attempts, then dead-lettered.
# GET /calls/status shows termination.state "failed" with attempts and
# last_error.

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
	conf => { 'outbox.backoff_base_ms' => 200, 'outbox.poll_ms' => 200, 'outbox.max_attempts' => 3 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

sub sent ($provider, $target) {
	my $f = $provider eq 'livekit' ? 'room' : 'call_id';
	return grep { ($_->{$f} // '') eq $target } $fake->requests($provider);
}

subtest 'permanent: LiveKit 401, OpenAI 400 - dead-lettered at once' => sub {
	$fake->control(livekit => '401', openai => '400');
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-95-a', openai_call_id => 'rtc_95_a');
	my $r = cancel($id);
	is($r->{status}, 200, 'the cancel still answers 200') or diag($r->{body});
	is($r->{json}{status}, 'cancelled', 'cancelled');
	is($r->{json}{message}, 'Call cancelled. LiveKit room termination failed. OpenAI hangup failed.', 'message');
	my $term = termination($id);
	is($term->{state}, 'failed', 'termination.state failed');
	my %by = map { $_->{provider} => $_ } @{ $term->{targets} };
	is($by{livekit}{state}, 'failed', 'livekit failed');
	is($by{livekit}{attempts}, 1, 'after 1 attempt');
	like($by{livekit}{last_error}, qr/^HTTP 401: .*unauthenticated/, "last_error: $by{livekit}{last_error}");
	is($by{openai}{state}, 'failed', 'openai failed');
	is($by{openai}{attempts}, 1, 'after 1 attempt');
	like($by{openai}{last_error}, qr/^HTTP 400: .*fake bad request/, "last_error: $by{openai}{last_error}");
	like($t->log, qr/\[warn\] .*outbox \d+: livekit room-95-a: HTTP 401.*dead-lettered/, 'logged as dead-lettered');
	$fake->control(livekit => '200', openai => '200');
	sleep 2.8;    # past the retry child's grace period
	is(scalar(() = sent(livekit => 'room-95-a')), 1, 'never retried (livekit)');
	is(scalar(() = sent(openai => 'rtc_95_a')), 1, 'never retried (openai)');
	is(termination($id)->{state}, 'failed', 'still failed');
};

subtest '5xx: retried, dead-lettered after max_attempts = 3' => sub {
	$fake->reset;
	$fake->control(livekit => '500', openai => '500');
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-95-b', openai_call_id => 'rtc_95_b');
	my $t0 = time;
	my $r = cancel($id);
	is($r->{json}{message}, 'Call cancelled. LiveKit room termination queued for retry. OpenAI hangup queued for retry.',
		'message: queued');
	is(termination($id)->{state}, 'pending', 'pending at first');
	ok($t->wait_until(sub { termination($id)->{state} eq 'failed' }, timeout => 10, interval => 0.1),
		'then failed');
	diag(sprintf 'dead-lettered %.2f s after the cancel', time - $t0);
	my $term = termination($id);
	for my $tg (@{ $term->{targets} }) {
		is($tg->{state}, 'failed', "$tg->{provider}: failed");
		is($tg->{attempts}, 3, "$tg->{provider}: 3 attempts");
		like($tg->{last_error}, qr/^HTTP 500: /, "$tg->{provider}: last_error $tg->{last_error}");
	}
	sleep 1;
	is(scalar(() = sent(livekit => 'room-95-b')), 3, '3 DeleteRoom requests');
	is(scalar(() = sent(openai => 'rtc_95_b')), 3, '3 hangup requests');
	my @keys = map { $_->{headers}{'idempotency-key'} } sent(openai => 'rtc_95_b');
	is(scalar(keys %{ { map { $_ => 1 } @keys } }), 1, 'one Idempotency-Key for the 3 hangups');
};

subtest 'a wrong LiveKit secret: verification fails (401), dead-lettered at once' => sub {
	$fake->reset;
	my $bad = $t->tmpdir . '/wrong.secret';
	open(my $fh, '>', $bad) or die $!;
	print {$fh} "not-the-secret\n";
	close $fh;
	$t->restart_callstopd(conf => { 'livekit.api_secret_file' => $bad });
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-95-c');
	my $r = cancel($id);
	is($r->{json}{message}, 'Call cancelled. LiveKit room termination failed.', 'message');
	my ($q) = sent(livekit => 'room-95-c');
	is($q->{auth}, 'verify_failed', 'the fake rejected the token');
	my $tg = termination($id)->{targets}[0];
	is($tg->{state}, 'failed', 'failed');
	is($tg->{attempts}, 1, '1 attempt');
	like($tg->{last_error}, qr/^HTTP 401: /, "last_error $tg->{last_error}");
};

done_testing();
