#!/usr/bin/perl
# SPEC 8, "a crash leaves no half-stored key": a worker SIGKILLed in the
# middle of a keyed cancel.
#   - before its commit (held on the batch row, as t/A2 holds it): the client
#     gets 502, the key is not stored (the master has the backend terminated,
#     so the transaction and the key's lock go with it), and the retry with the
#     same key runs the cancel, once;
#   - after its commit, before its termination requests (the test hook
#     CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS, as t/93): the key was stored with
#     the effects, its answer saying the termination is queued - which is
#     true, the retry child sends it - and the retry gets that answer; the
#     same for a keyed cancel-matching (SPEC 10.2), whose calls[] messages
#     are stored saying queued.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Background qw(bg bg_result hold_batch release);

plan skip_all => 'needs a callstopd built with --enable-test-hooks' unless CallstopTest->test_hooks;

my ($t, $fake) = FakeProviders->harness(workers => 2, env => { CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS => 4000 },
	conf => { 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

# The keyed cancel, in a child (Background.pm).
sub send_bg ($path, $idem, $json) {
	return bg($t, sub { $t->request(POST => $path, headers => { %auth, 'Idempotency-Key' => $idem },
		defined $json ? (body => $json) : (), timeout => 60) });
}

sub stored ($k) { return $t->psql_value("SELECT count(*) FROM callstop_idempotency WHERE key = '$k'") + 0 }

sub keyed ($path, $idem, %o) {
	return $t->request(POST => $path, headers => { %auth, 'Idempotency-Key' => $idem },
		exists $o{json} ? (body => $o{json}) : ());
}

subtest 'killed before its commit: nothing stored, the retry runs once' => sub {
	my $b = fx_batch($t, $tid, 'batch-b2-a', 30);
	my $holder = hold_batch($t, $b);
	my $bg = send_bg('/batch/batch-cancel/batch-b2-a', 'b2-a', undef);
	ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory'}) == 1 }, timeout => 60),
		'the cancel is held inside its transaction');
	my ($busy) = grep { $_->{state} eq 'busy' && $_->{request_uri} =~ m{^/batch/} }
		@{ $t->status_json->{processes} };
	ok($busy, 'its worker is busy with it') or return;
	kill 'KILL', $busy->{pid};
	my $r = bg_result($bg);
	is($r->{status}, 502, 'the client gets 502');
	ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock'}) == 0 }, timeout => 60), 'its backend is gone');
	release($t, $holder);
	is(stored('b2-a'), 0, 'the key is not stored');
	is(scalar @{ fx_history($t, batch => $b) }, 0, 'nothing committed');

	my $again = keyed('/batch/batch-cancel/batch-b2-a', 'b2-a');
	is($again->{status}, 200, 'the retry: 200') or diag($again->{body});
	ok(!exists $again->{headers}{'idempotent-replayed'}, 'the retry ran (no replay)');
	is($again->{json}{message}, 'Batch cancelled. 30 pending entries cancelled.', 'and cancelled the batch');
	my $third = keyed('/batch/batch-cancel/batch-b2-a', 'b2-a');
	is($third->{body}, $again->{body}, 'a third send: its answer');
	is($third->{headers}{'idempotent-replayed'}, 'true', '... replayed');
	is(scalar @{ fx_history($t, batch => $b) }, 1, 'one cancel ran');
	ok($t->wait_until(sub { scalar($t->worker_pids) == 3 }, timeout => 30), 'the worker was replaced');
};

subtest 'killed after its commit: the stored answer says queued, and stays true' => sub {
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-b2');
	my $bg = send_bg('/calls/cancel', 'b2-b', { resource_id => $id });
	my $line = $t->wait_until(sub { $t->log =~ /^(.*callstopd\[(\d+)\]: test hook: pausing.*)$/m ? $1 : 0 },
		timeout => 30);
	ok($line, 'the worker paused after its commit') or return;
	my ($pid) = $line =~ /callstopd\[(\d+)\]/;
	is(stored('b2-b'), 1, 'the key is stored with the effects');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'the call cancelled');
	kill 'KILL', $pid;
	like(bg_result($bg)->{status}, qr/^5\d\d$/, 'the client gets a 5xx');

	my $again = keyed('/calls/cancel', 'b2-b', json => { resource_id => $id });
	is($again->{status}, 200, 'the retry: 200');
	is($again->{headers}{'idempotent-replayed'}, 'true', 'a replay: the key ran once');
	is($again->{json}{message}, 'Call cancelled. LiveKit room termination queued for retry.',
		'the stored answer: termination queued');
	my @lk = $fake->wait_requests('livekit', 1, timeout => scaled(15));
	is(scalar @lk, 1, 'and the retry child deletes the room');
	is(scalar @{ fx_history($t) }, 2, 'one history row for the call (and one for the batch above)');
};

subtest 'cancel-matching killed after its commit: its stored calls[] say queued too' => sub {
	my $id = fx_call($t, $tid, status => 'running', agent_id => 'agent-b2c', livekit_room => 'room-b2c');
	my $body = { filter => { agent_id => 'agent-b2c' } };
	my $log0 = length $t->log;
	my $bg = send_bg('/calls/cancel-matching', 'b2-c', $body);
	my $line = $t->wait_until(sub { substr($t->log, $log0) =~ /^(.*callstopd\[(\d+)\]: test hook: pausing.*)$/m
		? $1 : 0 }, timeout => 30);
	ok($line, 'the worker paused after its commit') or return;
	my ($pid) = $line =~ /callstopd\[(\d+)\]/;
	is(stored('b2-c'), 1, 'the key is stored with the effects');
	kill 'KILL', $pid;
	like(bg_result($bg)->{status}, qr/^5\d\d$/, 'the client gets a 5xx');

	my $again = keyed('/calls/cancel-matching', 'b2-c', json => $body);
	is($again->{status}, 200, 'the retry: 200') or diag($again->{body});
	is($again->{headers}{'idempotent-replayed'}, 'true', 'a replay: the key ran once');
	is_deeply($again->{json}{calls}, [ { call_log_id => $id, status => 'cancelled',
		message => 'Call cancelled. LiveKit room termination queued for retry.' } ],
		'the stored answer: termination queued, not done');
	ok(scalar $fake->wait_requests('livekit', 2, timeout => scaled(15)) >= 2, 'and the retry child deletes the room');
};

done_testing;
