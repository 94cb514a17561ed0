#!/usr/bin/perl
# Invariant 2 under a race (SPEC 5): dialers claim and start entries in a tight
# loop through the dialer functions while the batch is cancelled through the
# API (force=false).  Once the cancel has returned, no dialer starts a call;
# no entry runs without a call; the counters equal the entry counts; P and A of
# the answer are what the database holds.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Dialer;
use Time::HiRes qw(time sleep);
use List::Util ();
use POSIX ();

my $ROUNDS = 20;
my $ENTRIES = 300;
my $DIALERS = 3;

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $s = Dialer::Session->new($t);

my $MSG = qr/^Batch cancelled\. (\d+) pending entries cancelled\.(?: (\d+) active call\(s\) will complete naturally\. Use force=true to terminate them\.)?$/;

# Warm up both workers (connections, key cache).
$t->api(GET => '/calls/status/batch-none', key => $key, frontend => 'fe1') for 1 .. 4;

my $delay = 0.02;    # aim between the first claim and the cancel; adapted each round
my ($mid, $early, $late) = (0, 0, 0);
my $t_start = time;

for my $round (1 .. $ROUNDS) {
	my $job = "batch-race-$round";
	my ($b, @dialers) = Dialer->race(t => $t, session => $s, tenant => $tid, job => $job, entries => $ENTRIES,
		dialers => $DIALERS, name => "r$round");
	# Cancel $delay after the dialers began (the first claim).
	my $this_delay = rand(2 * $delay);    # spread around the aim
	sleep $this_delay;

	my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $job });
	my ($cancel_done, $calls_then) = @{ $s->query("SELECT clock_timestamp(), count(*) FROM voice_call_logs
		WHERE batch_id = '$b'")->[0] };

	my @rc = map { $_->wait(timeout => 15) } @dialers;

	subtest "round $round" => sub {
		is($r->{status}, 200, 'cancel: 200') or diag($r->{body});
		my $res = $r->{json}{results}[0] // {};
		is($res->{status}, 'cancelled', 'cancelled');
		my ($p, $a) = ($res->{message} // '') =~ $MSG;
		ok(defined $p, 'message: Batch cancelled. P pending entries cancelled. [A active call(s) ...]')
			or diag($res->{message});
		$a //= 0;
		is($res->{cancelled_count}, $p, 'cancelled_count = P');
		is_deeply(\@rc, [ (0) x $DIALERS ], 'the dialers stopped by themselves, without SQL errors')
			or diag(join '', map { $_->errors } @dialers);

		my $st = fx_row($t, qq{SELECT
			(SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b') AS calls,
			(SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b' AND created_at > '$cancel_done') AS calls_after,
			(SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b'
				AND status IN ('initiated', 'connecting', 'ringing', 'running')) AS active_calls,
			(SELECT count(*) FROM voice_call_batch_entries e WHERE batch_id = '$b' AND status = 'running'
				AND NOT EXISTS (SELECT 1 FROM voice_call_logs c WHERE c.id = e.call_log_id
					AND c.batch_entry_id = e.id)) AS running_without_call,
			(SELECT count(*) FROM voice_call_logs c JOIN voice_call_batch_entries e ON e.id = c.batch_entry_id
				WHERE c.batch_id = '$b' AND e.status <> 'running') AS calls_of_stopped_entries,
			(SELECT status FROM voice_call_batches WHERE id = '$b') AS batch_status});
		is($st->{calls_after}, 0, 'no call created after the cancel returned');
		is($st->{calls}, $calls_then, 'no call appeared after the cancel returned');
		is($st->{running_without_call}, 0, "no entry 'running' without its call");
		is($st->{calls_of_stopped_entries}, 0, 'every call belongs to a running entry (none for a cancelled one)');
		is($st->{active_calls}, $st->{calls}, 'force=false: every started call runs on');
		is($a, $st->{calls}, 'A = the calls of the batch');
		is($st->{batch_status}, 'cancelled', 'batch cancelled');
		is_deeply(fx_entry_counts($t, $b), { total => $ENTRIES, pending => 0, claimed => 0, running => $a,
			completed => 0, failed => 0, cancelled => $p }, 'entries: P cancelled, A running, nothing left');
		fx_counters_ok($t, $b, 'counters equal the entry counts');
		is(scalar @{ fx_history($t, batch => $b) }, 1, 'one history row');
		note(sprintf 'round %d: delay %.0f ms, P=%d A=%d', $round, 1000 * $this_delay, $p // -1, $a);

		# Aim the next cancel at the middle of the dialing.
		if (!$a) { $early++; $delay += 0.01 }
		elsif (!$p) { $late++; $delay /= 2 if $delay > 0.004 }
		else { $mid++ }
	};
}
$s->close;
diag(sprintf '%d rounds in %.1f s: %d cancelled mid-dialing, %d before any call, %d after the last claim',
	$ROUNDS, time - $t_start, $mid, $early, $late);
cmp_ok($mid, '>=', 3, 'at least 3 rounds cancelled while dialers were claiming and starting');

# ---- concurrent cancels of the same resources (SPEC 3.1: one transaction per
# request, locks in a fixed order, no deadlock surfaced) ------------------------------

subtest 'concurrent cancels of overlapping lists, in different orders' => sub {
	my $CLIENTS = 8;
	my (@ids, @batches, @calls);
	for my $i (1 .. 4) {
		my $b = fx_batch($t, $tid, "batch-cc-$i", 50);
		my @e = fx_claim($t, $b, 'd1', 5);
		push @calls, map { fx_start($t, $_, 'd1', room => "room-cc-$i-$_") } @e[0 .. 2];
		push @batches, $b;
		push @ids, "batch-cc-$i";
	}
	my @lone = map { fx_call($t, $tid, status => 'running', openai_call_id => "rtc_cc_$_") } 1 .. 5;
	push @ids, @lone, @calls;
	my $h0 = fx_history_count($t);

	delete $t->{http}{handle};    # no kept-alive connection shared by the children
	pipe(my $gate_r, my $gate_w) or die "pipe: $!";
	my @kids;
	for my $i (1 .. $CLIENTS) {
		my @mine = List::Util::shuffle(@ids);
		my $file = $t->tmpdir . "/concurrent-$i.json";
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			close $gate_w;
			my $go = <$gate_r>;    # EOF: go
			my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
				json => { resource_id => \@mine, force => JSON::PP::true });
			open(my $fh, '>', $file) or POSIX::_exit(1);
			print {$fh} JSON::PP->new->encode({ status => $r->{status}, json => $r->{json}, body => $r->{body} });
			close $fh;
			POSIX::_exit(0);
		}
		push @kids, [ $pid, $file ];
	}
	close $gate_r;
	close $gate_w;    # all start at once
	my @res;
	for my $k (@kids) {
		waitpid($k->[0], 0);
		open(my $fh, '<', $k->[1]) or do { fail("client $k->[0] wrote no answer"); next };
		push @res, JSON::PP->new->decode(do { local $/; <$fh> });
	}
	is_deeply([ map { $_->{status} } @res ], [ (200) x $CLIENTS ], 'every request answered 200 (no deadlock surfaced)')
		or diag(join "\n", map { $_->{body} } @res);
	my @results = map { @{ $_->{json}{results} // [] } } @res;
	is(scalar @results, $CLIENTS * @ids, 'one result per id per request');
	my %cancelled_by;
	$cancelled_by{ $_->{resource_id} } += ($_->{cancelled_count} > 0 ? 1 : 0) for @results;
	is_deeply([ map { $cancelled_by{$_} // 0 } @ids[0 .. 3], @lone ], [ (1) x 9 ],
		'each batch and each standalone call was cancelled by exactly one request');
	is(List::Util::sum0(map { $_->{json}{total_cancelled} // 0 } @res), 4 * 50 + 5,
		'the counts add up to what changed: 4 x (47 entries + 3 calls) + 5 calls');
	is(fx_history_count($t) - $h0, scalar(grep { $_->{cancelled_count} > 0 } @results),
		'one history row per result that changed something');
	is($t->psql_value('SELECT count(*) FROM voice_call_logs WHERE id IN ('
		. join(',', map { "'$_'" } @lone, @calls) . q{) AND status <> 'cancelled'}), 0, 'every call cancelled');
	for my $b (@batches) {
		is_deeply(fx_entry_counts($t, $b), { total => 50, pending => 0, claimed => 0, running => 0, completed => 0,
			failed => 0, cancelled => 50 }, 'every entry cancelled');
		fx_counters_ok($t, $b, 'counters equal the entry counts');
	}
	is($t->psql_value('SELECT count(*) FROM termination_outbox'), 17, 'one outbox row per target (12 rooms, 5 OpenAI calls)');
};

done_testing();
