#!/usr/bin/perl
# GET /calls/status/{resource_id} (SPEC 3.2): the call object with its
# termination state, the batch object with counts and history, keyset pages
# of entries (a 100 000-entry batch paged through), the status filter, and
# the 400/404 answers.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup status cancel);
use Fixtures qw(:all);
use Time::HiRes qw(time);
use Time::Local qw(timegm);
use List::Util ();

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $key_id = $t->psql_value('SELECT id FROM api_keys');
my $T = JSON::PP::true;
my $F = JSON::PP::false;

sub epoch ($rfc3339) {
	my ($y, $m, $d, $H, $M, $S, $frac) = $rfc3339 =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?/
		or return undef;
	return timegm($S, $M, $H, $d, $m - 1, $y) + ($frac // 0);
}

# A time field: RFC 3339 UTC, and the same instant as the database's column
# (to the millisecond).
sub time_is ($got, $sql, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $db = $t->psql_value("SELECT extract(epoch FROM ($sql))");
	if (!defined $db || $db eq '') {
		return is($got, undef, "$name: null");
	}
	ok(is_rfc3339_utc($got), "$name: RFC 3339 UTC") or diag($got // 'undef');
	ok(defined $got && abs(epoch($got) - $db) < 0.0015, "$name: the stored instant") or diag("$got vs $db");
}

my @CALL_KEYS = sort qw(id status batch_job_id agent_id to_number livekit_room openai_call_id created_at
	started_at ended_at end_reason termination);

# ---- calls ---------------------------------------------------------------------------------

subtest 'call status: full shape, before and after a cancel' => sub {
	my $b = fx_batch($t, $tid, 'batch-s1', 3);
	my ($e) = fx_claim($t, $b, 'd1', 1);
	my $c = fx_start($t, $e, 'd1', agent => 'agent-7', room => 'room-s1');
	fx_report($t, $c, 'running');

	my $r = status($c);
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	my $j = $r->{json};
	is_deeply([ sort keys %$j ], [ sort qw(resource_id resource_type status call) ], 'top-level fields');
	is_deeply([ @$j{qw(resource_id resource_type status)} ], [ $c, 'call', 'running' ], 'resource fields');
	my $call = $j->{call};
	is_deeply([ sort keys %$call ], \@CALL_KEYS, 'call fields');
	is_deeply({ map { $_ => $call->{$_} } qw(id status batch_job_id agent_id to_number livekit_room openai_call_id
		ended_at end_reason termination) },
		{ id => $c, status => 'running', batch_job_id => 'batch-s1', agent_id => 'agent-7',
			to_number => '+15550000001', livekit_room => 'room-s1', openai_call_id => undef, ended_at => undef,
			end_reason => undef, termination => { state => 'none', targets => [] } }, 'call values');
	time_is($call->{created_at}, "SELECT created_at FROM voice_call_logs WHERE id = '$c'", 'created_at');
	time_is($call->{started_at}, "SELECT started_at FROM voice_call_logs WHERE id = '$c'", 'started_at');

	my $ts = { id => 'string', status => 'string', batch_job_id => 'string', agent_id => 'string',
		to_number => 'string', livekit_room => 'string', openai_call_id => 'null', created_at => 'string',
		started_at => 'string', ended_at => 'null', end_reason => 'null', termination => { state => 'string',
		targets => [] } };
	is_deeply(fx_types($r->{body}), { resource_id => 'string', resource_type => 'string', status => 'string',
		call => $ts }, 'JSON types');

	my $cr = cancel({ resource_id => $c });
	is($cr->{json}{status}, 'cancelled', 'cancelled');
	$r = status($c);
	is_deeply(fx_types($r->{body}), { resource_id => 'string', resource_type => 'string', status => 'string',
		call => { %$ts, ended_at => 'string', end_reason => 'string', termination => { state => 'string',
			targets => [ { provider => 'string', target => 'string', state => 'string', attempts => 'number',
				last_error => 'string', verified_at => 'null', seconds_to_silence => 'null' } ] } } },
		'JSON types after the cancel');
	$j = $r->{json};
	is_deeply([ @$j{qw(resource_id resource_type status)} ], [ $c, 'call', 'cancelled' ], 'status cancelled');
	$call = $j->{call};
	is_deeply([ sort keys %$call ], \@CALL_KEYS, 'call fields');
	is($call->{status}, 'cancelled', 'call.status');
	time_is($call->{ended_at}, "SELECT ended_at FROM voice_call_logs WHERE id = '$c'", 'ended_at');
	is($call->{end_reason}, $t->psql_value("SELECT end_reason FROM voice_call_logs WHERE id = '$c'"),
		'end_reason as stored');
	ok(defined $call->{end_reason} && length $call->{end_reason}, 'end_reason set');
	my $term = $call->{termination};
	is_deeply([ sort keys %$term ], [qw(state targets)], 'termination fields');
	is($term->{state}, 'failed', 'termination.state failed (LiveKit not configured)');
	is(scalar @{ $term->{targets} }, 1, 'one target');
	my $tg = $term->{targets}[0];
	# SPEC 11: a target item gains verified_at and seconds_to_silence
	is_deeply([ sort keys %$tg ], [ sort qw(provider target state attempts last_error verified_at seconds_to_silence) ],
		'target fields');
	is_deeply([ @$tg{qw(provider target state)} ], [qw(livekit room-s1 failed)], 'target values');
	like($tg->{attempts}, qr/^\d+$/, 'attempts is a number');
	like($tg->{last_error} // '', qr/LiveKit.*not configured/i, 'last_error says LiveKit is not configured');
};

subtest 'call status: both targets, no batch' => sub {
	my $c = fx_call($t, $tid, status => 'ringing', livekit_room => 'room-s2', openai_call_id => 'rtc_s2',
		agent_id => undef);
	my $r = status($c);
	is_deeply([ @{ $r->{json}{call} }{qw(batch_job_id agent_id started_at termination)} ],
		[ undef, 'agent-1', undef, { state => 'none', targets => [] } ], 'nulls and no termination');
	cancel({ resource_id => $c });
	my $term = status($c)->{json}{call}{termination};
	is($term->{state}, 'failed', 'failed');
	is_deeply([ map { [ @$_{qw(provider target state)} ] } @{ $term->{targets} } ],
		[ [qw(livekit room-s2 failed)], [qw(openai rtc_s2 failed)] ], 'two targets');
	like($term->{targets}[1]{last_error} // '', qr/OpenAI.*not configured/i, 'OpenAI not configured');
};

subtest 'termination.state: pending > failed > done > none' => sub {
	my %cases = (
		'done'                 => [ [qw(livekit done)] ],
		'done+failed'          => [ [qw(livekit done)], [qw(openai failed)] ],
		'done+pending+failed'  => [ [qw(livekit done)], [qw(openai pending)], [qw(livekit failed)] ],
		'pending'              => [ [qw(openai pending)] ],
	);
	my %want = ('done' => 'done', 'done+failed' => 'failed', 'done+pending+failed' => 'pending',
		'pending' => 'pending');
	for my $name (sort keys %cases) {
		my $c = fx_call($t, $tid, status => 'cancelled');
		my $i = 0;
		for my $row (@{ $cases{$name} }) {
			$i++;
			$t->psql(qq{INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, attempts)
				VALUES ($tid, '$c', '$row->[0]', 't$i', '$row->[1]', $i)});
		}
		my $term = status($c)->{json}{call}{termination};
		is($term->{state}, $want{$name}, "$name: $want{$name}");
		is_deeply([ map { [ @$_{qw(provider target state attempts)} ] } @{ $term->{targets} } ],
			[ map { [ $cases{$name}[$_][0], 't' . ($_ + 1), $cases{$name}[$_][1], $_ + 1 ] } 0 .. $#{ $cases{$name} } ],
			"$name: the targets");
	}
};

# ---- batches ---------------------------------------------------------------------------------

my @ENTRY_KEYS = sort qw(id status call_log_id to_number updated_at);

subtest 'batch status: shape, counts (pending counts claimed), history after a cancel' => sub {
	my $b = fx_batch($t, $tid, 'batch-s3', 5);
	my @e = fx_claim($t, $b, 'd1', 2);
	my $c = fx_start($t, $e[0], 'd1');

	my $r = status('batch-s3');
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	my $j = $r->{json};
	is_deeply([ sort keys %$j ], [ sort qw(resource_id resource_type status batch entries next_cursor) ],
		'top-level fields');
	is_deeply([ @$j{qw(resource_id resource_type status next_cursor)} ], [ 'batch-s3', 'batch', 'processing', undef ],
		'resource fields; next_cursor null on the only page');
	my $batch = $j->{batch};
	is_deeply([ sort keys %$batch ], [ sort qw(id job_id status created_at cancelled_at counts history) ],
		'batch fields');
	is_deeply({ map { $_ => $batch->{$_} } qw(id job_id status cancelled_at counts history) },
		{ id => $b, job_id => 'batch-s3', status => 'processing', cancelled_at => undef,
			counts => { total => 5, pending => 4, running => 1, completed => 0, failed => 0, cancelled => 0 },
			history => [] }, 'batch values; counts.pending = 3 pending + 1 claimed');
	time_is($batch->{created_at}, "SELECT created_at FROM voice_call_batches WHERE id = '$b'", 'created_at');
	is(scalar @{ $j->{entries} }, 5, 'five entries');
	is_deeply([ sort keys %{ $j->{entries}[0] } ], \@ENTRY_KEYS, 'entry fields');
	my $stored = $t->psql(qq{SELECT id, status, call_log_id, to_number FROM voice_call_batch_entries
		WHERE batch_id = '$b' ORDER BY id});
	is_deeply([ map { [ @$_{qw(id status call_log_id to_number)} ] } @{ $j->{entries} } ],
		[ map { [ $_->[0], $_->[1], $_->[2] eq '' ? undef : $_->[2], $_->[3] ] } @$stored ],
		'entries in id order, as stored');
	for my $en (@{ $j->{entries} }) {
		time_is($en->{updated_at}, "SELECT updated_at FROM voice_call_batch_entries WHERE id = $en->{id}",
			"entry $en->{id} updated_at");
	}
	is($j->{entries}[0]{call_log_id}, $c, 'the started entry names its call');

	my $cr = cancel({ resource_id => 'batch-s3', force => $T });
	is($cr->{status}, 200, 'cancelled');
	my $rid = $cr->{headers}{'x-request-id'};
	$r = status('batch-s3?limit=2');
	$j = $r->{json};
	$batch = $j->{batch};
	is($j->{status}, 'cancelled', 'status cancelled');
	my $entry_t = { id => 'number', status => 'string', call_log_id => 'string', to_number => 'string',
		updated_at => 'string' };
	is_deeply(fx_types($r->{body}), { resource_id => 'string', resource_type => 'string', status => 'string',
		batch => { id => 'string', job_id => 'string', status => 'string', created_at => 'string',
			cancelled_at => 'string', counts => { map { $_ => 'number' } qw(total pending running completed failed cancelled) },
			history => [ { at => 'string', action => 'string', force => 'boolean', cancelled_count => 'number',
				route => 'string', key_id => 'number', request_id => 'string' } ] },
		entries => [ $entry_t, { %$entry_t, call_log_id => 'null' } ], next_cursor => 'string' }, 'JSON types');
	time_is($batch->{cancelled_at}, "SELECT cancelled_at FROM voice_call_batches WHERE id = '$b'", 'cancelled_at');
	is_deeply($batch->{counts}, { total => 5, pending => 0, running => 0, completed => 0, failed => 0,
		cancelled => 5 }, 'counts after');
	is(scalar @{ $batch->{history} }, 1, 'one history item');
	my $h = $batch->{history}[0];
	is_deeply([ sort keys %$h ], [ sort qw(at action force cancelled_count route key_id request_id) ],
		'history item fields');
	is_deeply({ map { $_ => $h->{$_} } qw(action force cancelled_count key_id request_id) },
		{ action => 'cancel', force => $T, cancelled_count => 5, key_id => $key_id, request_id => $rid },
		'history values; request_id is the X-Request-Id of the cancel');
	ok(defined $h->{route} && !ref $h->{route} && length $h->{route}, 'route named');
	time_is($h->{at}, "SELECT at FROM cancel_history WHERE batch_id = '$b'", 'history at');

	my $r2 = $t->api(POST => '/batch/batch-cancel/batch-s3?force=true', key => $key, frontend => 'fe1');
	is($r2->{json}{message}, 'Batch already in terminal state: cancelled', 'a no-op cancel');
	is(scalar @{ status('batch-s3')->{json}{batch}{history} }, 1, '... adds no history item');
};

# Page through a batch; returns (ids, pages, all entries).
sub page_all ($job, $query) {
	my (@ids, @entries);
	my $cursor;
	my $pages = 0;
	our @PAGE_MS = ();
	while (1) {
		my $q = $query . (defined $cursor ? "&cursor=$cursor" : '');
		my $t0 = time;
		my $r = status($job, "?$q");
		push @PAGE_MS, 1000 * (time - $t0);
		if ($r->{status} != 200) {
			fail("page $pages: $r->{status}");
			diag($r->{body});
			last;
		}
		$pages++;
		push @entries, @{ $r->{json}{entries} };
		$cursor = $r->{json}{next_cursor};
		last unless defined $cursor;
		last if $pages > 1000;
	}
	return ([ map { $_->{id} } @entries ], $pages, \@entries);
}

subtest '100 000 entries, paged by 1000' => sub {
	my $t0 = time;
	my $b = fx_batch($t, $tid, 'batch-big', 100_000);
	my $t1 = time;
	diag(sprintf 'loaded 100 000 entries in %.2f s', $t1 - $t0);
	my ($ids, $pages) = page_all('batch-big', 'limit=1000');
	my $t2 = time;
	diag(sprintf 'paged through them in %d requests, %.2f s (%.1f ms/page)', $pages, $t2 - $t1,
		1000 * ($t2 - $t1) / ($pages || 1));
	our @PAGE_MS;
	my $avg = sub (@ms) { List::Util::sum0(@ms) / (@ms || 1) };
	diag(sprintf 'first 10 pages %.1f ms each, last 10 pages %.1f ms each', $avg->(@PAGE_MS[0 .. 9]),
		$avg->(@PAGE_MS[-10 .. -1])) if @PAGE_MS >= 20;
	is($pages, 100, '100 pages; the last has next_cursor null');
	is(scalar @$ids, 100_000, 'every entry');
	my $db = [ map { $_->[0] } @{ $t->psql("SELECT id FROM voice_call_batch_entries WHERE batch_id = '$b' ORDER BY id") } ];
	ok(@$ids == @$db && !grep({ $ids->[$_] != $db->[$_] } 0 .. $#$db), 'exactly once each, in id order');

	my $r = status('batch-big');
	is(scalar @{ $r->{json}{entries} }, 100, 'default limit 100');
	ok(defined $r->{json}{next_cursor} && !ref $r->{json}{next_cursor}, 'next_cursor is a string');
	is($r->{json}{batch}{counts}{total}, 100_000, 'counts.total');
	$r = status('batch-big', '?limit=1');
	is(scalar @{ $r->{json}{entries} }, 1, 'limit=1');
	$r = status('batch-big', '?limit=1&cursor=' . $r->{json}{next_cursor});
	is_deeply([ map { $_->{id} } @{ $r->{json}{entries} } ], [ $db->[1] ], 'its cursor leads to the second entry');
};

subtest 'status filter, with paging' => sub {
	my $b = fx_batch($t, $tid, 'batch-f', 30);
	my @claimed = fx_claim($t, $b, 'd1', 10);
	fx_start($t, $_, 'd1') for @claimed[0 .. 4];
	my $stored = sub ($where) {
		return [ map { $_->[0] } @{ $t->psql("SELECT id FROM voice_call_batch_entries WHERE batch_id = '$b'"
			. " AND $where ORDER BY id") } ];
	};

	my ($ids, $pages, $entries) = page_all('batch-f', 'status=pending&limit=7');
	is_deeply($ids, $stored->(q{status IN ('pending', 'claimed')}), 'status=pending: pending and claimed entries');
	is(scalar @$ids, 25, '25 of them');
	is($pages, 4, 'in 4 pages of 7');
	is_deeply([ sort keys %{ { map { $_->{status} => 1 } @$entries } } ], [qw(claimed pending)], 'statuses seen');

	($ids, $pages, $entries) = page_all('batch-f', 'status=running&limit=2');
	is_deeply($ids, $stored->(q{status = 'running'}), 'status=running');
	is($pages, 3, '5 entries in 3 pages of 2');
	ok(!grep({ !defined $_->{call_log_id} } @$entries), 'each running entry names its call');

	($ids) = page_all('batch-f', 'status=completed');
	is_deeply($ids, [], 'status=completed: none');
	my $r = status('batch-f', '?status=cancelled');
	is_deeply([ $r->{json}{entries}, $r->{json}{next_cursor} ], [ [], undef ], 'empty page: no cursor');
	is($r->{json}{batch}{counts}{pending}, 25, 'counts are not filtered');

	cancel({ resource_id => 'batch-f' });
	($ids) = page_all('batch-f', 'status=cancelled&limit=10');
	is_deeply($ids, $stored->(q{status = 'cancelled'}), 'after a cancel: status=cancelled');
	is(scalar @$ids, 25, '25 cancelled');
};

# ---- 400 and 404 -------------------------------------------------------------------------------

subtest 'bad query values: 400 invalid_request' => sub {
	fx_batch($t, $tid, 'batch-q', 5);
	fx_batch($t, $tid, 'batch-q2', 5);
	my $good = status('batch-q', '?limit=2')->{json}{next_cursor};
	my $other = status('batch-q2', '?limit=2')->{json}{next_cursor};
	ok(defined $good && defined $other, 'cursors issued');
	(my $garbled = $good) =~ s/(.)$/$1 eq '0' ? '1' : '0'/e;
	(my $other_id = $good) =~ s/^(.{15})./${1}9/;
	my @bad = (
		[ 'limit=0' ], [ 'limit=1001' ], [ 'limit=abc' ], [ 'limit=-1' ], [ 'limit=' ], [ 'limit=1.5' ],
		[ 'status=bogus' ], [ 'status=' ], [ 'status=PENDING' ],
		[ 'cursor=abc' ], [ 'cursor=' . ('0' x 48) ], [ 'cursor=' . ('f' x 64) ],
		[ "cursor=$garbled", 'garbled cursor' ], [ "cursor=$other_id", 'cursor with another position' ],
		[ "cursor=$other", 'cursor of another batch' ],
	);
	my $before = fx_snapshot($t);
	for my $b (@bad) {
		is_unified_error(status('batch-q', "?$b->[0]"), 400, 'invalid_request', $b->[1] // $b->[0]);
	}
	is(status('batch-q', "?limit=2&cursor=$good")->{status}, 200, 'the good cursor works');
	is(status('batch-q', '?limit=1000')->{status}, 200, 'limit=1000 is fine');
	is(status('batch-q', '?limit=1')->{status}, 200, 'limit=1 is fine');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

subtest 'not found: 404' => sub {
	is_unified_error(status('batch-none'), 404, 'not_found', 'unknown batch');
	is_unified_error(status(fx_uuid()), 404, 'not_found', 'unknown call UUID');
	is_unified_error(status('not-a-uuid'), 404, 'not_found', 'not a UUID');
	is_unified_error(status('x' x 200), 404, 'not_found', 'a 200-character id');
};

done_testing();
