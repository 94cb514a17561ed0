#!/usr/bin/perl
# SPEC 8, a key never runs twice: two identical batch cancels with the same
# Idempotency-Key sent at once, the first held inside its transaction by a
# lock on the batch row (as t/A2 holds it).  The second waits for the key:
# if the first finishes within idempotency_wait, the second gets its answer
# (a replay); if not, 409 idempotency_key_in_flight with Retry-After: 1, and
# a later retry gets the replay.  Either way exactly one cancel ran (one
# history row).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Background qw(bg bg_result hold_batch release);
use Time::HiRes qw(time);

my $WAIT_MS = 2000;    # below half of database_statement_timeout_ms (5 s), the cap
my $t = CallstopTest->new(workers => 3, conf => { idempotency_wait => $WAIT_MS });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

sub waiting ($event) {
	return $t->psql_value(qq{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
		AND wait_event = '$event'}) + 0;
}

# The keyed batch cancel, in a child (Background.pm).
sub send_bg ($path, $idem) {
	return bg($t, sub { $t->request(POST => $path, headers => { %auth, 'Idempotency-Key' => $idem }, timeout => 60) });
}

sub history_of ($b) { return scalar @{ fx_history($t, batch => $b) } }

# Warm every worker up (connection, key cache).
$t->api(GET => '/calls/status/batch-none', key => $key, frontend => 'fe1') for 1 .. 6;

subtest 'the second waits, then gets the first one\'s answer' => sub {
	my $b = fx_batch($t, $tid, 'batch-b1-a', 20);
	my $holder = hold_batch($t, $b);
	my $first = send_bg('/batch/batch-cancel/batch-b1-a', 'b1-a');
	ok($t->wait_until(sub { waiting('tuple') + waiting('transactionid') >= 1 }, timeout => 60),
		'the first cancel is held inside its transaction');
	my $second = send_bg('/batch/batch-cancel/batch-b1-a', 'b1-a');
	ok($t->wait_until(sub { waiting('advisory') == 1 }, timeout => 60), 'the second waits for the key');
	release($t, $holder);
	my ($r1, $r2) = (bg_result($first), bg_result($second));
	is($r1->{status}, 200, 'first: 200') or diag($r1->{body});
	ok(!exists $r1->{headers}{'idempotent-replayed'}, 'first: ran');
	is($r2->{status}, 200, 'second: 200') or diag($r2->{body});
	is($r2->{headers}{'idempotent-replayed'}, 'true', 'second: a replay');
	is($r2->{body}, $r1->{body}, 'second: the first answer, byte for byte');
	is(history_of($b), 1, 'exactly one cancel ran');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

subtest 'still running after idempotency_wait: 409, then the replay' => sub {
	my $b = fx_batch($t, $tid, 'batch-b1-b', 20);
	my $holder = hold_batch($t, $b);
	my $first = send_bg('/batch/batch-cancel/batch-b1-b', 'b1-b');
	ok($t->wait_until(sub { waiting('tuple') + waiting('transactionid') >= 1 }, timeout => 60),
		'the first cancel is held inside its transaction');
	my $t0 = time;
	my $r2 = $t->request(POST => '/batch/batch-cancel/batch-b1-b', headers => { %auth, 'Idempotency-Key' => 'b1-b' },
		timeout => 60);
	my $waited = time - $t0;
	is($r2->{status}, 409, 'second: 409') or diag($r2->{body});
	is($r2->{json}{error}{code}, 'idempotency_key_in_flight', 'code idempotency_key_in_flight');
	is($r2->{headers}{'retry-after'}, '1', 'Retry-After: 1');
	cmp_ok($waited, '>=', $WAIT_MS / 1000 - 0.05, sprintf('after waiting idempotency_wait (%.2f s)', $waited));
	is(history_of($b), 0, 'nothing committed yet');
	release($t, $holder);
	my $r1 = bg_result($first);
	is($r1->{status}, 200, 'first: 200') or diag($r1->{body});
	my $r3 = $t->request(POST => '/batch/batch-cancel/batch-b1-b', headers => { %auth, 'Idempotency-Key' => 'b1-b' });
	is($r3->{status}, 200, 'the retry: 200');
	is($r3->{headers}{'idempotent-replayed'}, 'true', 'the retry: a replay');
	is($r3->{body}, $r1->{body}, 'the retry: the first answer, byte for byte');
	is(history_of($b), 1, 'exactly one cancel ran');
	is($t->psql_value(q{SELECT count(*) FROM callstop_idempotency WHERE key = 'b1-b'}), 1, 'one key stored');
};

done_testing;
