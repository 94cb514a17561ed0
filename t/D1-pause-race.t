#!/usr/bin/perl
# Invariant 2 for pause (SPEC 10.1): dialers claim and start entries in a
# tight loop through the dialer functions while the batch is paused through
# the API.  Once the pause has answered, no dialer starts a call and none
# holds a claim; no entry runs without its call; the counters equal the entry
# counts; R and A of the answer are what the database holds.  After the
# resume, claims and starts go on.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Dialer;
use Time::HiRes qw(time sleep);

my $ROUNDS = 12;
my $ENTRIES = 200;
my $DIALERS = 3;

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $s = Dialer::Session->new($t);

my $MSG = qr/^Batch paused\. (\d+) claimed entries released\.(?: (\d+) active call\(s\) will complete naturally\.)?$/;

$t->api(GET => '/calls/status/batch-none', key => $key, frontend => 'fe1') for 1 .. 4;

my ($mid, $delay) = (0, 0.02);
for my $round (1 .. $ROUNDS) {
	my $job = "batch-prace-$round";
	my ($b, @dialers) = Dialer->race(t => $t, session => $s, tenant => $tid, job => $job, entries => $ENTRIES,
		dialers => $DIALERS, name => "p$round");
	my $this_delay = rand(2 * $delay);
	sleep $this_delay;

	my $r = $t->api(POST => "/batch/$job/pause", key => $key, frontend => 'fe1');
	my ($paused_at, $calls_then) = @{ $s->query("SELECT clock_timestamp(), count(*) FROM voice_call_logs
		WHERE batch_id = '$b'")->[0] };
	my @rc = map { $_->wait(timeout => 15) } @dialers;

	subtest "round $round" => sub {
		is($r->{status}, 200, 'pause: status 200') or diag($r->{body});
		is($r->{json}{status}, 'paused', 'paused');
		my ($rel, $a) = ($r->{json}{message} // '') =~ $MSG;
		ok(defined $rel, 'message: Batch paused. R claimed entries released. [A active call(s) ...]')
			or diag($r->{json}{message});
		$a //= 0;
		is($r->{json}{released_count}, $rel, 'released_count = R');
		is_deeply(\@rc, [ (0) x $DIALERS ], 'the dialers stopped by themselves, without SQL errors')
			or diag(join '', map { $_->errors } @dialers);
		my $st = fx_row($t, qq{SELECT
			(SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b') AS calls,
			(SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b' AND created_at > '$paused_at') AS calls_after,
			(SELECT count(*) FROM voice_call_batch_entries e WHERE batch_id = '$b' AND status = 'running'
				AND NOT EXISTS (SELECT 1 FROM voice_call_logs c WHERE c.id = e.call_log_id)) AS running_without_call,
			(SELECT status FROM voice_call_batches WHERE id = '$b') AS batch_status});
		is($st->{calls_after}, 0, 'no call created after the pause answered');
		is($st->{calls}, $calls_then, 'no call appeared after the pause answered');
		is($st->{running_without_call}, 0, "no entry 'running' without its call");
		is($a, $st->{calls}, 'A = the calls of the batch');
		is($st->{batch_status}, 'paused', 'still paused');
		is_deeply(fx_entry_counts($t, $b), { total => $ENTRIES, pending => $ENTRIES - $a, claimed => 0, running => $a,
			completed => 0, failed => 0, cancelled => 0 }, 'entries: A running, the rest pending, none claimed');
		fx_counters_ok($t, $b, 'counters equal the entry counts');
		$mid++ if $a > 0 && $a < $ENTRIES;
		if (!$a) { $delay += 0.01 } elsif ($a > $ENTRIES / 2) { $delay /= 2 if $delay > 0.004 }

		if ($round % 4 == 0) {
			my $rr = $t->api(POST => "/batch/$job/resume", key => $key, frontend => 'fe1');
			is($rr->{json}{status}, 'processing', 'resumed: processing (dialers had claimed)');
			my $d = Dialer->spawn(t => $t, batch => $b, name => "p$round-after", iterations => 5, max_seconds => 20);
			is($d->wait(timeout => 15), 0, 'a dialer after the resume ran cleanly') or diag($d->errors);
			cmp_ok($t->psql_value("SELECT count(*) FROM voice_call_logs WHERE batch_id = '$b'"), '>', $a,
				'after the resume, claims and starts go on');
			fx_counters_ok($t, $b, 'counters equal the entry counts after the resume');
		}
	};
}
$s->close;
cmp_ok($mid, '>=', 2, 'at least 2 rounds paused while the dialers were claiming and starting');
done_testing();
