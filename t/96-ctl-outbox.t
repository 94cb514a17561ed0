#!/usr/bin/perl
# callstopctl outbox list / retry: an operator sees the dead-lettered
# termination rows and re-queues them; the retry child (woken by NOTIFY
# callstop_outbox) then terminates what they name.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel termination);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

# poll_ms long: a re-queued row is taken at once only if the NOTIFY works
my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.poll_ms' => 3000, 'outbox.backoff_base_ms' => 200 });
my $tid = $t->tenant('acme');
$t->tenant('other');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

sub table ($out) {
	my ($head, @rows) = split /\n/, $out;
	return ([ split ' ', $head ], [ map { [ split /\s{2,}/, s/^\s+//r ] } @rows ]);
}

# Dead-letter two rows (LiveKit 401), leave one done.
$fake->control(livekit => '401');
my $a = fx_call($t, $tid, status => 'running', livekit_room => 'room-96-a');
my $b = fx_call($t, $tid, status => 'running', livekit_room => 'room-96-b');
is(cancel($a)->{json}{message}, 'Call cancelled. LiveKit room termination failed.', 'a: dead-lettered');
is(cancel($b)->{json}{message}, 'Call cancelled. LiveKit room termination failed.', 'b: dead-lettered');
$fake->control(livekit => '200');
my $c = fx_call($t, $tid, status => 'running', livekit_room => 'room-96-c');
is(cancel($c)->{json}{message}, 'Call cancelled. LiveKit room terminated.', 'c: done');
my ($ida, $idb, $idc) = map { $t->psql_value("SELECT id FROM termination_outbox WHERE call_id = '$_'") } $a, $b, $c;

FakeProviders::settled($t);    # c: done means verified (SPEC 11)
subtest 'outbox list' => sub {
	my ($rc, $out, $err) = $t->ctl('outbox', 'list');
	is($rc, 0, 'exit 0') or diag($err);
	my ($head, $rows) = table($out);
	is_deeply($head, [qw(id tenant call_id provider target state attempts next_attempt_at last_error)], 'columns');
	is_deeply([ map { $_->[0] } @$rows ], [ $idc, $idb, $ida ], 'all rows, newest first');
	my ($ra) = grep { $_->[0] == $ida } @$rows;
	is_deeply([ @$ra[1 .. 6] ], [ 'acme', $a, 'livekit', 'room-96-a', 'failed', 1 ], 'a row');
	like($ra->[7], qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'next_attempt_at RFC 3339 UTC');
	like($ra->[8], qr/^HTTP 401: \{"code":"unauthenticated"/, 'last_error');
	my ($rc2) = grep { $_->[0] == $idc } @$rows;
	is($rc2->[5], 'done', 'c done');

	($rc, $out) = $t->ctl('outbox', 'list', '--state', 'failed');
	is_deeply([ map { $_->[0] } @{ (table($out))[1] } ], [ $idb, $ida ], '--state failed');
	($rc, $out) = $t->ctl('outbox', 'list', '--state', 'failed', '--limit', '1');
	is_deeply([ map { $_->[0] } @{ (table($out))[1] } ], [$idb], '--limit 1');
	($rc, $out) = $t->ctl('outbox', 'list', '--state', 'pending');
	is($out, "id  tenant  call_id  provider  target  state  attempts  next_attempt_at  last_error\n",
		'--state pending: header only');

	for my $bad ([ '--state', 'nope' ], [ '--limit', '0' ], [ '--limit', 'x' ], ['extra'], ['--bogus']) {
		my ($rcb, undef, $e) = $t->ctl('outbox', 'list', @$bad);
		is($rcb, 2, "list @$bad: usage error (exit 2)");
		like($e, qr/^callstopctl: outbox list: /, 'one error line') or diag($e);
	}
	my (undef, undef, $e) = $t->ctl('outbox', 'list', '--state', 'nope');
	is($e, "callstopctl: outbox list: --state: expected pending, sent, done, failed or unknown, got 'nope'\n",
		'--state nope: the states it takes (SPEC 11)');
	for my $st (qw(sent unknown)) {
		my ($rcs) = $t->ctl('outbox', 'list', '--state', $st);
		is($rcs, 0, "--state $st: accepted");
	}
};

subtest 'outbox retry ID: done by the retry child once LiveKit answers 200' => sub {
	my $t0 = time;
	my ($rc, $out, $err) = $t->ctl('outbox', 'retry', $ida);
	is($rc, 0, 'exit 0') or diag($err);
	is($out, "re-queued 1 outbox row(s)\n", 'output');
	ok($t->wait_until(sub { termination($a)->{state} eq 'done' }, timeout => 5), 'a: termination.state done');
	my $secs = time - $t0;
	ok($secs < 2, sprintf 'within %.2f s (woken by NOTIFY, not the 3 s poll)', $secs);
	my @lk = grep { $_->{room} eq 'room-96-a' } $fake->requests('livekit');
	is_deeply([ map { $_->{status} } @lk ], [ 401, 200 ], 'a: the 401, then the 200 of the retry');
	my $row = fx_row($t, "SELECT state, attempts, last_error FROM termination_outbox WHERE id = $ida");
	is_deeply($row, { state => 'done', attempts => 1, last_error => undef }, 'row: done, 1 attempt since the retry');
	is(termination($b)->{state}, 'failed', 'b untouched');
};

subtest 'outbox retry errors' => sub {
	my ($rc, $out, $err) = $t->ctl('outbox', 'retry', $idc, 999999);
	is($rc, 1, 'not failed / unknown ids: exit 1');
	is($out, "re-queued 0 outbox row(s)\n", 'nothing re-queued');
	like($err, qr/^callstopctl: outbox retry: outbox row $idc is done, not failed; not re-queued$/m, 'done row');
	like($err, qr/^callstopctl: outbox retry: no outbox row with id 999999$/m, 'unknown row');
	is($t->psql_value("SELECT state FROM termination_outbox WHERE id = $idc"), 'done', 'c still done');
	for my $bad ([], [ '--all-failed', $idb ], ['x'], ['0'], ['--bogus']) {
		my ($rcb, undef, $e) = $t->ctl('outbox', 'retry', @$bad);
		is($rcb, 2, "retry @$bad: usage error (exit 2)");
		like($e, qr/^callstopctl: outbox retry: /, 'one error line') or diag($e);
	}
	my ($rcu, undef, $eu) = $t->ctl('outbox', 'nope');
	is($rcu, 2, 'unknown subcommand: exit 2');
	like($eu, qr/^callstopctl: outbox: unknown subcommand 'nope'/, 'message');
	is(termination($b)->{state}, 'failed', 'b still failed');
};

subtest 'outbox retry --all-failed' => sub {
	$fake->control(livekit => [qw(500 200)]);
	my ($rc, $out, $err) = $t->ctl('outbox', 'retry', '--all-failed');
	is($rc, 0, 'exit 0') or diag($err);
	is($out, "re-queued 1 outbox row(s)\n", 'the one failed row');
	ok($t->wait_until(sub { termination($b)->{state} eq 'done' }, timeout => 8), 'b: done after a 500 and a retry');
	my @lk = grep { $_->{room} eq 'room-96-b' } $fake->requests('livekit');
	is_deeply([ map { $_->{status} } @lk ], [ 401, 500, 200 ], 'b: 401, then 500, then 200');
	($rc, $out) = $t->ctl('outbox', 'list', '--state', 'failed');
	is(scalar(() = split /\n/, $out), 1, 'no failed rows left');
	($rc, $out) = $t->ctl('outbox', 'retry', '--all-failed');
	is($out, "re-queued 0 outbox row(s)\n", 'again: nothing to do, exit 0');
	is($rc, 0, 'exit 0');
};

done_testing();
