#!/usr/bin/perl
# SPEC 6, issue 10 defect 6: recovery after a provider outage does not wait
# for the backoff.  LiveKit fails long enough for a row's backoff to grow;
# once LiveKit is back, the first success to it pulls its pending rows
# forward, so the room is deleted before its next scheduled attempt would
# have been due.  The dead letter depends on age (outbox.max_age): a row
# older than that is dead-lettered at its next failure, however few its
# attempts.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.backoff_base_ms' => 4000, 'outbox.backoff_max_ms' => 60000, 'outbox.poll_ms' => 200,
		'outbox.timeout_ms' => 1000, 'outbox.max_attempts' => 100 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

sub cancel ($id) {
	return $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id });
}

sub sent ($room, $status = undef) {
	return grep { ($_->{room} // '') eq $room && (!defined $status || ($_->{status} // 0) == $status) }
		$fake->requests('livekit');
}

sub epoch_ms ($sql) { return $t->psql_value("SELECT (extract(epoch FROM ($sql)) * 1000)::bigint") }

$fake->control(livekit => '500');

subtest 'a row older than outbox.max_age is dead-lettered at its next failure' => sub {
	my $id = fx_call($t, $tid, status => 'cancelled', livekit_room => 'room-92-old');
	$t->psql(<<~"SQL");
		INSERT INTO termination_outbox (tenant_id, call_id, provider, target, attempts, last_error,
		                                created_at, next_attempt_at)
		VALUES ($tid, '$id', 'livekit', 'room-92-old', 1, 'HTTP 500: earlier', now() - interval '2 hours', now())
		SQL
	ok($t->wait_until(sub {
		$t->psql_value("SELECT state FROM termination_outbox WHERE call_id = '$id'") eq 'failed'
	}, timeout => 30, interval => 0.2), 'dead-lettered (max_age 1 h by default, max_attempts 100)');
	my $row = fx_row($t, "SELECT attempts, last_error FROM termination_outbox WHERE call_id = '$id'");
	is($row->{attempts}, 2, 'after its second attempt');
	like($row->{last_error}, qr/^HTTP 500: /, "last_error: $row->{last_error}");
	like($t->log, qr/outbox \d+: livekit room-92-old: HTTP 500.*dead-lettered/, 'logged as dead-lettered');
};

subtest 'rooms are deleted soon after LiveKit is back, not at their next backoff' => sub {
	my $a = fx_call($t, $tid, status => 'running', livekit_room => 'room-92-a');
	my $r = cancel($a);
	is($r->{json}{message}, 'Call cancelled. LiveKit room termination queued for retry.', 'queued');
	# attempts 1 (the worker), 2 (2-4 s later), 3 (4-8 s after that): the
	# next one is 8-16 s away once the third failure is recorded
	ok($t->wait_until(sub { sent('room-92-a', 500) >= 3 }, timeout => 60, interval => 0.2), 'three failures');
	sleep 1;
	my $row = fx_row($t, "SELECT state, attempts FROM termination_outbox WHERE call_id = '$a'");
	is("$row->{state}/$row->{attempts}", 'pending/3', 'pending after 3 attempts');
	my $due = epoch_ms("SELECT next_attempt_at FROM termination_outbox WHERE call_id = '$a'");
	my $now = epoch_ms('SELECT now()');
	cmp_ok($due - $now, '>', 3000, sprintf 'the next attempt is %.1f s away', ($due - $now) / 1000);

	$fake->control(livekit => '200');
	my $up = time;
	# the first success to LiveKit: a new cancel
	my $c = fx_call($t, $tid, status => 'running', livekit_room => 'room-92-c');
	is(cancel($c)->{json}{message}, 'Call cancelled. LiveKit room terminated.', 'a new cancel succeeds');
	ok($t->wait_until(sub { sent('room-92-a', 200) }, timeout => 30, interval => 0.1), 'room-92-a deleted');
	my ($del) = sent('room-92-a', 200);
	diag(sprintf 'room-92-a deleted %.2f s after LiveKit came back (its backoff had %.2f s to go)',
		$del->{time} / 1000 - $up, $due / 1000 - $up);
	cmp_ok($del->{time}, '<', $due, 'deleted before its next scheduled attempt was due');
	ok($t->wait_until(sub {
		$t->psql_value("SELECT state FROM termination_outbox WHERE call_id = '$a'") eq 'done'
	}, timeout => 10), 'row done');
	sleep 0.5;
	is(scalar(() = sent('room-92-a', 200)), 1, 'deleted exactly once');
};

done_testing();
