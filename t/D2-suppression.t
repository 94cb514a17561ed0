#!/usr/bin/perl
# Do-not-call suppression (SPEC 12): adding a number cancels its
# not-yet-started entries across the tenant's active batches (counters and
# history as SPEC 5), other tenants untouched; the dialer functions refuse
# it afterwards (claim cancels, start NULL, add_entries skips); hangup
# cancels its active calls; removal does not resurrect; E.164 checks (400,
# nothing changed); keyset pages; GET / DELETE by number; 401/403; isolation.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Api qw(api_setup api q_);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $other = $t->tenant('beta');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $kb = $t->key(tenant => 'beta', frontend_id => 'fe1');
api_setup($t, key => $key);
my $T = JSON::PP::true;

sub suppress ($body) { return api(POST => '/suppressions', json => $body) }
sub as_b ($m, $p, @o) { return $t->api($m, $p, key => $kb, frontend => 'fe1', @o) }
sub list_count ($tenant) { return $t->psql_value("SELECT count(*) FROM suppressions WHERE tenant_id = $tenant") + 0 }
sub entry_status ($b, $number) {
	return join ',', map { $_->[0] } @{ $t->psql("SELECT status FROM voice_call_batch_entries
		WHERE batch_id = '$b' AND to_number = '$number' ORDER BY id") };
}

my $N = '+15550000003';
my $b1 = fx_batch($t, $tid, 'batch-s1', 10);
my $b2 = fx_batch($t, $tid, 'batch-s2', 10);
my $b3 = fx_batch($t, $tid, 'batch-s3-done', 10);
$t->psql("UPDATE voice_call_batch_entries SET status = 'cancelled' WHERE batch_id = '$b3';
	UPDATE voice_call_batches SET status = 'cancelled', cancelled_at = now() WHERE id = '$b3'");
my $bb = fx_batch($t, $other, 'batch-s1', 10);
my @claimed = fx_claim($t, $b1, 'd1', 3);    # entries 1..3 of batch-s1, N among them

subtest 'adding a number cancels its entries in every active batch of the tenant' => sub {
	my $theirs = fx_snapshot($t, tenant => $other);
	my $r = suppress({ numbers => [$N], reason => 'asked to stop' });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, { added => 1, already_suppressed => 0, entries_cancelled => 2, calls_cancelled => 0,
		message => '1 number(s) added, 0 already suppressed. 2 pending entries cancelled.' }, 'body');
	is(entry_status($b1, $N), 'cancelled', 'the claimed entry in batch-s1: cancelled');
	is(entry_status($b2, $N), 'cancelled', 'the pending entry in batch-s2: cancelled');
	is(entry_status($bb, $N), 'pending', "the other tenant's entry: pending");
	is_deeply(fx_snapshot($t, tenant => $other), $theirs, 'nothing of the other tenant changed');
	fx_counters_ok($t, $_, 'counters equal the entry counts') for $b1, $b2;
	is_deeply([ map { [ @$_{qw(action cancelled_count route)} ] } @{ fx_history($t, batch => $b1) }, @{ fx_history($t, batch => $b2) } ],
		[ [ 'suppression', 1, 'suppressions.add' ], [ 'suppression', 1, 'suppressions.add' ] ], 'one history row per batch');
	my $again = suppress({ numbers => [ $N, $N ] });
	is_deeply([ @{ $again->{json} }{qw(added already_suppressed entries_cancelled)} ], [ 0, 1, 0 ], 'again: already suppressed');
};

subtest 'the dialer functions refuse a suppressed number' => sub {
	my @got = map { $_->[1] } @{ $t->psql("SELECT * FROM callstop_claim_entries('$b2', 'd2', 100)") };
	is(scalar @got, 9, 'a claim of batch-s2 gets the other 9 entries');
	ok(!(grep { $_ eq $N } @got), 'never the suppressed number');
	# an entry the platform inserted by hand after the suppression
	$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b1', '$N'), ('$b1', '+15550000099')");
	my @c = map { $_->[1] } @{ $t->psql("SELECT * FROM callstop_claim_entries('$b1', 'd3', 100)") };
	is(scalar @c, 8, 'a claim of batch-s1 gets its 7 other pending entries and the new one');
	ok(!(grep { $_ eq $N } @c), 'not the suppressed one');
	is(entry_status($b1, $N), 'cancelled,cancelled', 'the claim cancelled the suppressed entry instead');
	# a claim made before the number was suppressed: the start refuses it
	my $b4 = fx_batch($t, $tid, 'batch-s4', 2);
	my ($e) = fx_claim($t, $b4, 'd4', 1);
	$t->psql(q{INSERT INTO suppressions (tenant_id, number) VALUES (} . $tid . q{, '+15550000001')});
	is(fx_start($t, $e, 'd4'), undef, 'callstop_start_call returns NULL');
	is(entry_status($b4, '+15550000001'), 'cancelled', 'and cancels the entry');
	is($t->psql_value("SELECT callstop_add_entries('$b4', ARRAY['$N', '+15550000077', '+15550000001'])"), 1,
		'callstop_add_entries skips suppressed numbers and counts what it added');
	my $b6 = fx_batch($t, $tid, 'batch-s6', 3);    # its first entry is +15550000001
	my @one = @{ $t->psql("SELECT * FROM callstop_claim_entries('$b6', 'd6', 1)") };
	is_deeply([ map { $_->[1] } @one ], ['+15550000002'], 'a claim of 1 whose first candidate is suppressed claims the next');
	is(entry_status($b6, '+15550000001'), 'cancelled', 'and cancels the suppressed one');
	fx_counters_ok($t, $_, 'counters equal the entry counts') for $b1, $b4, $b6;
};

subtest 'hangup: the active calls to the number are cancelled and terminated' => sub {
	my $lone = fx_call($t, $tid, status => 'running', to_number => '+15550000777');
	my $b5 = fx_batch($t, $tid, 'batch-s5', 1);
	$t->psql("UPDATE voice_call_batch_entries SET to_number = '+15550000777' WHERE batch_id = '$b5'");
	my ($e) = fx_claim($t, $b5, 'd5', 1);
	my $bc = fx_start($t, $e, 'd5');
	my $theirs = fx_call($t, $other, status => 'running', to_number => '+15550000777');
	my $keep = fx_call($t, $tid, status => 'running', to_number => '+15550000778');
	my $r = suppress({ numbers => ['+15550000777'], hangup => $T });
	is_deeply($r->{json}, { added => 1, already_suppressed => 0, entries_cancelled => 0, calls_cancelled => 2,
		message => '1 number(s) added, 0 already suppressed. 0 pending entries cancelled. 2 active call(s) cancelled.' },
		'body') or diag($r->{body});
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$_'"), 'cancelled', 'call cancelled') for $lone, $bc;
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$theirs'"), 'running', "the other tenant's call runs");
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$keep'"), 'running', 'another number runs');
	is(scalar @{ fx_history($t, call => $lone) }, 1, 'one history row per call');
	fx_counters_ok($t, $b5, 'counters equal the entry counts');
};

subtest 'GET, DELETE by number; removal does not resurrect' => sub {
	my $r = api(GET => '/suppressions/%2B15550000003');
	is($r->{status}, 200, 'GET with %2B: status 200');
	is_deeply([ sort keys %{ $r->{json} } ], [qw(created_at number reason)], 'fields');
	is($r->{json}{number}, $N, 'number');
	is($r->{json}{reason}, 'asked to stop', 'reason');
	ok(is_rfc3339_utc($r->{json}{created_at}), 'created_at RFC 3339 UTC');
	is(api(GET => "/suppressions/$N")->{status}, 200, 'GET with a literal +');
	is_unified_error(as_b(GET => "/suppressions/$N"), 404, 'not_found', "the other tenant does not see it");
	is_unified_error(as_b(DELETE => "/suppressions/$N"), 404, 'not_found', "nor remove it");
	$r = api(DELETE => '/suppressions/%2B15550000003');
	is($r->{status}, 200, 'DELETE: status 200');
	is_deeply($r->{json}, { number => $N, removed => $T }, 'body');
	is_unified_error(api(GET => "/suppressions/$N"), 404, 'not_found', 'gone');
	is_unified_error(api(DELETE => "/suppressions/$N"), 404, 'not_found', 'DELETE again: 404');
	is(entry_status($b2, $N), 'cancelled', 'the cancelled entry stays cancelled');
	is_unified_error(api(GET => '/suppressions/5550000003'), 400, 'invalid_request', 'GET of a non-E.164 number');
};

subtest 'bad input: 400, nothing changed' => sub {
	my $before = fx_snapshot($t);
	my $n0 = list_count($tid);
	for my $c (
		[ { numbers => ['15550000003'] }, 'no +' ],
		[ { numbers => ['+05550000003'] }, 'leading 0' ],
		[ { numbers => ['+123456'] }, '6 digits' ],
		[ { numbers => ['+1234567890123456'] }, '16 digits' ],
		[ { numbers => ['+1555000000a'] }, 'a letter' ],
		[ { numbers => ['+15550000004', ' +15550000005'] }, 'one bad among good' ],
		[ { numbers => [15550000003] }, 'a number, not a string' ],
		[ { numbers => [] }, 'empty list' ],
		[ { numbers => '+15550000003' }, 'a string, not a list' ],
		[ {}, 'no numbers' ],
		[ { numbers => [ map { sprintf '+1556%07d', $_ } 1 .. 1001 ] }, '1001 numbers' ],
		[ { numbers => ['+15550000004'], hangup => 'yes' }, 'hangup not a boolean' ],
		[ { numbers => ['+15550000004'], reason => 7 }, 'reason not a string' ],
	) {
		is_unified_error(suppress($c->[0]), 400, 'invalid_request', $c->[1]);
	}
	is_unified_error(api(POST => '/suppressions', body => '{"numbers":[', content_type => 'application/json'), 400,
		'invalid_json', 'bad JSON');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
	is(list_count($tid), $n0, 'the list did not change');
	my $ok = suppress({ numbers => [ map { sprintf '+1556%07d', $_ } 1 .. 1000 ] });
	is($ok->{json}{added}, 1000, '1000 numbers are fine');
};

subtest 'keyset pages' => sub {
	my $n = list_count($tid);
	my (@seen, $cursor, $pages);
	do {
		my $r = api(GET => '/suppressions?limit=300' . (defined $cursor ? "&cursor=$cursor" : ''));
		is($r->{status}, 200, 'page: status 200') or last;
		push @seen, map { $_->{number} } @{ $r->{json}{suppressions} };
		$cursor = $r->{json}{next_cursor};
		$pages++;
	} while (defined $cursor && $pages < 20);
	is(scalar @seen, $n, 'every number once');
	is(scalar(keys %{ { map { $_ => 1 } @seen } }), $n, 'no repeats');
	is($pages, int(($n + 299) / 300), 'pages of 300');
	my $first = api(GET => '/suppressions?limit=2')->{json};
	is(scalar @{ $first->{suppressions} }, 2, 'limit 2');
	is(api(GET => '/suppressions')->{json}{suppressions}->@*, 100, 'default limit 100');
	is_unified_error(api(GET => '/suppressions?limit=0'), 400, 'invalid_request', 'limit 0');
	is_unified_error(api(GET => '/suppressions?limit=1001'), 400, 'invalid_request', 'limit 1001');
	is_unified_error(api(GET => '/suppressions?cursor=abc'), 400, 'invalid_request', 'a cursor not issued');
	my $rb = as_b(GET => "/suppressions?cursor=$first->{next_cursor}");
	is_unified_error($rb, 400, 'invalid_request', "A's cursor is refused for B");
	my $lb = as_b(GET => '/suppressions')->{json};
	is_deeply($lb, { suppressions => [], next_cursor => undef }, 'B sees an empty list');
};

subtest '401, 403, 405 on every route' => sub {
	for my $c ([ POST => '/suppressions' ], [ GET => '/suppressions' ], [ GET => "/suppressions/$N" ],
		[ DELETE => "/suppressions/$N" ]) {
		is_unified_error($t->api(@$c, frontend => 'fe1', json => { numbers => [$N] }), 401, 'unauthorized', "$c->[0] $c->[1] without a key");
		is_unified_error($t->api(@$c, key => $key, frontend => 'fe9', json => { numbers => [$N] }), 403, 'forbidden',
			"$c->[0] $c->[1] from another frontend");
	}
	is_unified_error(api(PUT => '/suppressions'), 405, 'method_not_allowed', 'PUT /suppressions');
};

done_testing();
