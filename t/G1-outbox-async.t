#!/usr/bin/perl
# Issue 11 item 3: the outbox's claim and result after a cancel (and the
# verifier's) commit without a WAL flush of their own, so that a single
# cancel of a call with a target costs about the one flush of the cancel.
# The cluster is restarted with durability on (fsync, synchronous_commit),
# then single-call cancels of calls with nothing running and of calls with an
# OpenAI call (whose hangup's answer is final, no verification) are compared
# by pg_stat_wal's flushes: before, 3 flushes per OpenAI cancel against 1
# (the claim and the result flushed too); now the difference stays under 1
# (the WAL writer flushes the asynchronous commits in the background).  The
# targets end done all the same, each sent once.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel);
use FakeProviders;
use Time::HiRes qw(sleep time);

my $N = 20;
my ($t, $fake) = FakeProviders->harness(workers => 1);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

{
	$t->pg_stop;
	my $d = $t->tmpdir;
	my $opts = "-k $d/run -p " . $t->pg_port . " -c listen_addresses='' -c fsync=on -c synchronous_commit=on";
	$t->_run_ok([ $t->_as_pg($t->{pg_ctl}, '-D', "$d/pg", '-l', "$d/pg.log", '-o', $opts, '-w', '-t', 120,
		'start') ], 'pg_ctl start');
	$t->{pg_running} = 1;
}

sub calls ($col, $prefix, $n) {
	my $rows = $t->psql(<<~"SQL");
		INSERT INTO voice_call_logs (tenant_id, to_number, status, $col, started_at)
		SELECT $tid, '+1555' || lpad(g::text, 7, '0'), 'running', '$prefix' || g, now()
		FROM generate_series(1, $n) g RETURNING id
		SQL
	return map { $_->[0] } @$rows;
}

sub open_targets () {
	return $t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state IN ('pending', 'sent')});
}

# The worker finds its connection gone once (a 503), then reconnects.
ok($t->wait_until(sub { my ($id) = calls('agent_id', 'warm', 1); cancel($id)->{status} == 200 },
	timeout => CallstopTest::scaled(30)), 'callstopd cancels after the restart');

# Flushes per cancel of $n calls; backends report WAL counts when idle,
# within 10 s (PGSTAT_IDLE_INTERVAL), hence the waits around the reading.
sub flushes_per_cancel (@ids) {
	$t->wait_until(sub { open_targets() == 0 }, timeout => CallstopTest::scaled(30));
	sleep 11;
	$t->psql("SELECT pg_stat_reset_shared('wal')");
	for my $id (@ids) {
		my $r = cancel($id);
		is($r->{status}, 200, "cancel $id") or diag($r->{body});
	}
	ok($t->wait_until(sub { open_targets() == 0 }, timeout => CallstopTest::scaled(30)), 'every target final');
	sleep 11;
	return $t->psql_value('SELECT wal_sync FROM pg_stat_wal') / @ids;
}

my $none = flushes_per_cancel(calls('agent_id', 'agent-', $N));
my @openai = calls('openai_call_id', 'rtc_g1_', $N);
my $with = flushes_per_cancel(@openai);
diag(sprintf 'WAL flushes per cancel: %.2f with an OpenAI call, %.2f with nothing running', $with, $none);
cmp_ok($with - $none, '<', 1.0, 'the outbox claim and result add no flush of their own');

is($t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state = 'done' AND attempts = 1
	AND target LIKE 'rtc_g1_%'}), $N, 'every OpenAI target done, sent once');
is(scalar(() = $fake->requests('openai')), $N, 'one hangup per call');

done_testing;
