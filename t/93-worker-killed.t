#!/usr/bin/perl
# SPEC 6: "A crash between commit and the HTTP call loses nothing."  A worker
# killed with SIGKILL after the cancel committed and before it sent
# DeleteRoom (held there by the test hook CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS):
# the call stays cancelled and the retry child deletes the room.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Background qw(bg bg_result);
use Time::HiRes qw(sleep time);

plan skip_all => 'needs a callstopd built with --enable-test-hooks' unless CallstopTest->test_hooks;

my ($t, $fake) = FakeProviders->harness(workers => 2,
	env => { CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS => 3000 }, conf => { 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-93', openai_call_id => 'rtc_93');

# The cancel, from a child process: its worker will not answer.
my $bg = bg($t, sub { $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id },
	timeout => 20) });

my $line = $t->wait_until(sub { $t->log =~ /^(.*callstopd\[(\d+)\]: test hook: pausing.*)$/m ? $1 : 0 },
	timeout => 15);
ok($line, 'the worker paused after commit') or BAIL_OUT('no "test hook: pausing" line');
my ($pid) = $line =~ /callstopd\[(\d+)\]/;
my @workers = $t->worker_pids;
ok((grep { $_ == $pid } @workers), "pid $pid is a child of the master");
is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'committed: cancelled');
is($t->psql_value("SELECT count(*) FROM termination_outbox WHERE call_id = '$id' AND state = 'pending'
	AND attempts = 0"), 2, 'two outbox rows, pending, never attempted');
is(scalar(() = $fake->requests), 0, 'nothing sent yet');

ok(kill('KILL', $pid), "SIGKILL worker $pid");
my $killed = time;
my $status = bg_result($bg)->{status};
like($status, qr/^5\d\d$/, "the cancel's client got $status (its worker died)");

my @lk = $fake->wait_requests('livekit', 1, timeout => scaled(10));
my @oa = $fake->wait_requests('openai', 1, timeout => scaled(10));
my $secs = time - $killed;
is(scalar @lk, 1, 'the retry child deleted the room');
is($lk[0]{room}, 'room-93', 'that room');
is($lk[0]{auth}, 'ok', 'with a verified token');
is(scalar @oa, 1, 'and hung up the OpenAI call');
ok($secs < 6, sprintf 'within %.2f s of the kill', $secs);
diag(sprintf 'room deleted %.2f s after SIGKILL (grace 2 s from commit, poll 200 ms)', $secs);
ok($t->wait_until(sub {
	$t->api(GET => "/calls/status/$id", key => $key, frontend => 'fe1')->{json}{call}{termination}{state} eq 'done'
}, timeout => 5), 'termination.state done');
ok($t->wait_until(sub { scalar($t->worker_pids) == 3 && !grep { $_ == $pid } $t->worker_pids }, timeout => 10),
	'the master respawned the worker');
sleep 0.5;
is(scalar(() = $fake->requests('livekit')), 1, 'DeleteRoom sent once');

done_testing();
