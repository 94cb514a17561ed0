#!/usr/bin/perl
# SPEC 11: [openai] api = realtime | live.  live hangs up with POST
# /v1/live/sessions/{id}/hangup and the row's Idempotency-Key (the same on a
# retry); 2xx/404 is done at once, verified_at set (OpenAI offers no
# read-back); realtime is unchanged; callstopd -t refuses other values.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel termination);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2, livekit => 0,
	conf => { 'outbox.poll_ms' => 100, 'outbox.backoff_base_ms' => 100, 'outbox.backoff_max_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

subtest 'realtime (the default): unchanged' => sub {
	my $id = fx_call($t, $tid, status => 'running', openai_call_id => 'rtc_C3_a');
	is(cancel($id)->{json}{message}, 'Call cancelled. OpenAI call hung up.', 'message');
	my ($oa) = $fake->requests('openai');
	is($oa->{path}, '/v1/realtime/calls/rtc_C3_a/hangup', 'Realtime path');
	is($oa->{api}, 'realtime', 'realtime');
	my $term = termination($id);
	is($term->{state}, 'done', 'done at once: no read-back');
	ok($term->{targets}[0]{verified_at}, 'verified_at set');
	ok(defined $term->{targets}[0]{seconds_to_silence}, 'seconds_to_silence set');
};

subtest 'live: the Live API path, an Idempotency-Key kept on retry' => sub {
	$t->restart_callstopd(conf => { 'openai.api' => 'live' });
	$fake->reset;
	$fake->control(openai => [qw(500 200)]);
	my $id = fx_call($t, $tid, status => 'running', openai_call_id => 'sess_C3_b');
	is(cancel($id)->{json}{message}, 'Call cancelled. OpenAI hangup queued for retry.', 'first attempt 500: queued');
	my @oa = $fake->wait_requests('openai', 2, timeout => scaled(10));
	is(scalar @oa, 2, 'retried');
	is($_->{path}, '/v1/live/sessions/sess_C3_b/hangup', "attempt $_->{seq}: Live path") for @oa;
	is($_->{api}, 'live', 'live') for @oa;
	like($oa[0]{headers}{'idempotency-key'}, qr/^[0-9a-f-]{36}$/, 'an Idempotency-Key');
	is($oa[1]{headers}{'idempotency-key'}, $oa[0]{headers}{'idempotency-key'}, 'the same on the retry');
	my $term;
	ok($t->wait_until(sub { $term = termination($id); $term->{state} eq 'done' }, timeout => scaled(10)), 'done');
	ok($term->{targets}[0]{verified_at}, 'verified_at set');
	is(scalar(() = $fake->requests('livekit_admin')), 0, 'no read-back');

	$fake->reset;
	$fake->control(openai => '404');
	$id = fx_call($t, $tid, status => 'running', openai_call_id => 'sess_C3_c');
	is(cancel($id)->{json}{message}, 'Call cancelled. OpenAI call hung up.', '404: already ended');
	is(termination($id)->{state}, 'done', 'done');
};

subtest 'callstopd -t refuses other values' => sub {
	for my $bad ('Realtime', 'websocket', '') {
		$t->write_conf(conf => { %{ $fake->conf($t->tmpdir, livekit => 0) }, 'openai.api' => $bad });
		my $out = qx{"$t->{callstopd}" -t -c "${\ $t->conf_file}" 2>&1};
		isnt($? >> 8, 0, "api = '$bad': refused");
		like($out, $bad eq '' ? qr/api: must not be empty/ : qr/api: expected realtime or live, got '\Q$bad\E'/,
			'... saying why') or diag($out);
	}
	$t->write_conf(conf => { %{ $fake->conf($t->tmpdir, livekit => 0) }, 'openai.api' => 'live' });
	my $out = qx{"$t->{callstopd}" -t -c "${\ $t->conf_file}" 2>&1};
	is($? >> 8, 0, 'api = live: OK') or diag($out);
};

done_testing();
