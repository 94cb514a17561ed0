#!/usr/bin/perl
# The cancel core at the cost of its effects (issue 11 item 2,
# sql/012_cancel_core.sql): the helpers keep their plans (plpgsql, no
# EXECUTE in the counting trigger); a cancel of one call goes through none of
# the set-based helpers; and whatever path cancels, the batch counters equal
# the entries (invariant 3): a running or claimed entry's call, the batch's
# pending and claimed entries, a force cancel, the last call settling its
# batch, and a plain writer after a cancel in the same transaction (the
# cancel's "counted myself" setting must not leak to it).  Outcomes of one
# ref by id and by OpenAI call id, other tenants', unknown and terminal.
# The one-call fast path (sql/015_cancel_fast_path.sql) takes refs exactly
# as callstop_uuid_or_null() does, and a marked history row wakes the
# delivery children through its trigger.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Api qw(api_setup cancel);

my $t = CallstopTest->new(workers => 1);
my $tid = $t->tenant('acme');
my $other = $t->tenant('beta');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

# One ref through callstop_cancel() as callstopd calls it; the row as a hash.
sub sql_cancel ($tenant, $type, $ref) {
	return fx_row($t, sprintf(q{SELECT outcome, status, cancelled_count, resource_uuid, tenant_id,
		array_length(outbox_ids, 1) AS outbox_n
		FROM callstop_cancel(%d, '{%s}', ARRAY['%s'], false, 'test', NULL, 'req-g0', 'cancelled',
		'{livekit,openai}')}, $tenant, $type, $ref));
}

sub entry_status ($e) { return $t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e") }
sub batch_status ($b) { return $t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'") }

subtest 'the helpers keep their plans' => sub {
	for my $f (qw(callstop_terminate_calls callstop_history callstop_history_action callstop_batch_settle
		callstop_count_entries callstop_cancel callstop_cancel_call callstop_event_wanted))
	{
		is($t->psql_value("SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
			WHERE p.proname = '$f'"), 'plpgsql', "$f is plpgsql (its statements' plans are cached)");
	}
	unlike($t->psql_value(q{SELECT prosrc FROM pg_proc WHERE proname = 'callstop_count_entries'}),
		qr/\bEXECUTE\b/, 'the counting trigger runs no EXECUTE (planned once per trigger, not per statement)');
};

subtest 'a call outside any batch: one statement, not callstop_cancel_call()' => sub {
	my $c = fx_call($t, $tid, status => 'running', livekit_room => 'room-g0-alone', openai_call_id => 'oa-g0-alone');
	my $rows = $t->psql(<<~"SQL");
		BEGIN;
		SET LOCAL track_functions = 'all';
		SELECT outcome, status, cancelled_count, array_length(outbox_ids, 1)
		FROM callstop_cancel($tid, '{call}', ARRAY['$c'], false, 'test', NULL, 'r-alone', 'cancelled', '{livekit}');
		SELECT coalesce(pg_stat_get_xact_function_calls('callstop_cancel_call'::regproc), 0);
		COMMIT;
		SQL
	is_deeply($rows->[0], [ 'cancelled', 'cancelled', 1, 2 ], 'cancelled, two outbox rows');
	is($rows->[1][0], 0, 'callstop_cancel_call() not called');
	is_deeply([ map { [ $_->{provider}, $_->{state} ] } @{ fx_outbox($t, $c) } ],
		[ [ 'livekit', 'pending' ], [ 'openai', 'failed' ] ], 'the outbox rows: LiveKit pending, OpenAI (not configured) failed');
	is($t->psql_value("SELECT count(DISTINCT idempotency_key) FROM termination_outbox WHERE call_id = '$c'"), 2,
		'... each its own Idempotency-Key');
	is_deeply($t->psql("SELECT route, request_id, force, cancelled_count, announce FROM cancel_history WHERE call_id = '$c'"),
		[ [ 'test', 'r-alone', 'f', 1, 'f' ] ], 'one history row');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$c'"), 'cancelled', 'the call cancelled');
	is(sql_cancel($tid, 'call', $c)->{outcome}, 'terminal', 'again: terminal, nothing more written');
	is(scalar @{ fx_outbox($t, $c) }, 2, '... still two outbox rows');
	is(scalar @{ fx_history($t, call => $c) }, 1, '... still one history row');
};

subtest 'one call: none of the set-based helpers' => sub {
	my $b = fx_batch($t, $tid, 'batch-g0-fast', 3);
	my ($e) = fx_claim($t, $b, 'd1', 1);
	my $c = fx_start($t, $e, 'd1', room => 'room-g0-fast');
	my $rows = $t->psql(<<~"SQL");
		BEGIN;
		SET LOCAL track_functions = 'all';
		SELECT outcome FROM callstop_cancel($tid, '{call}', ARRAY['$c'], false, 'test', NULL, 'r', 'cancelled',
		  '{livekit,openai}');
		SELECT coalesce(pg_stat_get_xact_function_calls('callstop_find_calls'::regproc), 0),
		       coalesce(pg_stat_get_xact_function_calls('callstop_terminate_calls'::regproc), 0),
		       coalesce(pg_stat_get_xact_function_calls('callstop_history'::regproc), 0),
		       coalesce(pg_stat_get_xact_function_calls('callstop_cancel_call'::regproc), 0),
		       current_setting('callstop.entries_counted', true);
		COMMIT;
		SQL
	is($rows->[0][0], 'cancelled', 'cancelled');
	is_deeply([ @{ $rows->[1] }[0 .. 2] ], [ 0, 0, 0 ], 'no callstop_find_calls, callstop_terminate_calls, callstop_history');
	is($rows->[1][3], 0, 'one statement (015), not callstop_cancel_call()');
	is($rows->[1][4], '', '... and its "counted myself" setting reset');
	is(entry_status($e), 'cancelled', 'its entry cancelled');
	is(scalar @{ fx_outbox($t, $c) }, 1, 'one outbox row');
	is(scalar @{ fx_history($t, call => $c) }, 1, 'one history row');
	fx_counters_ok($t, $b, 'counters equal entries');
};

subtest 'a batch: running and claimed entries, pending, force, settle' => sub {
	my $b = fx_batch($t, $tid, 'batch-g0', 8);
	my @e = fx_claim($t, $b, 'd1', 4);
	my @c = map { fx_start($t, $_, 'd1', room => "room-g0-$_") } @e[0 .. 2];
	fx_report($t, $c[1], 'running');
	fx_counters_ok($t, $b, 'counters before');

	my $r = cancel($c[0]);    # through callstopd: entry running
	is($r->{status}, 200, 'cancel of a call of the batch: 200') or diag($r->{body});
	is(entry_status($e[0]), 'cancelled', 'its running entry cancelled');
	fx_counters_ok($t, $b, 'counters after a running entry');

	# a call whose entry is still claimed (written by hand)
	my $hand = fx_call($t, $tid, status => 'ringing', batch_id => $b, batch_entry_id => $e[3]);
	is(sql_cancel($tid, 'call', $hand)->{outcome}, 'cancelled', 'call of a claimed entry cancelled');
	is(entry_status($e[3]), 'cancelled', 'its claimed entry cancelled');
	fx_counters_ok($t, $b, 'counters after a claimed entry');

	# claim one more so that the batch holds pending and claimed entries
	my ($e5) = fx_claim($t, $b, 'd2', 1);
	my $row = fx_row($t, qq{SELECT outcome, pending_cancelled, active_count FROM callstop_cancel($tid, '{batch}',
		ARRAY['batch-g0'], false, 'test', NULL, 'r', 'cancelled', '{livekit,openai}')});
	is_deeply($row, { outcome => 'cancelled', pending_cancelled => 4, active_count => 2 },
		'batch cancelled: 3 pending + 1 claimed, 2 active');
	is(entry_status($e5), 'cancelled', 'the claimed entry cancelled');
	fx_counters_ok($t, $b, 'counters after the batch cancel');

	$row = fx_row($t, qq{SELECT outcome, cancelled_count FROM callstop_cancel($tid, '{batch}',
		ARRAY['batch-g0'], true, 'test', NULL, 'r', 'cancelled', '{livekit,openai}')});
	is_deeply($row, { outcome => 'already_cancelled', cancelled_count => 2 }, 'force: 2 calls terminated');
	fx_counters_ok($t, $b, 'counters after the force cancel');
	is($t->psql_value("SELECT running_count FROM voice_call_batches WHERE id = '$b'"), 0, 'none running');

	my $b2 = fx_batch($t, $tid, 'batch-g0-settle', 1);
	my ($s) = fx_claim($t, $b2, 'd1', 1);
	my $sc = fx_start($t, $s, 'd1');
	is(batch_status($b2), 'processing', 'one call running, nothing pending');
	is(sql_cancel($tid, 'call', $sc)->{outcome}, 'cancelled', 'its call cancelled');
	is(batch_status($b2), 'completed', 'the batch settled to completed');
	fx_counters_ok($t, $b2, 'counters after settling');
};

subtest 'a plain writer after a cancel, same transaction: counted' => sub {
	my $b = fx_batch($t, $tid, 'batch-g0-leak', 5);
	my ($e) = fx_claim($t, $b, 'd1', 1);
	my $c = fx_start($t, $e, 'd1');
	$t->psql(<<~"SQL");
		BEGIN;
		SELECT outcome FROM callstop_cancel($tid, '{call}', ARRAY['$c'], false, 'test', NULL, 'r', 'cancelled',
		  '{livekit,openai}');
		UPDATE voice_call_batch_entries SET status = 'failed' WHERE batch_id = '$b' AND status = 'pending';
		INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b', '+15550009999');
		COMMIT;
		SQL
	is_deeply(fx_entry_counts($t, $b)->{failed}, 4, 'four entries failed by the plain writer');
	fx_counters_ok($t, $b, 'counters equal entries');
};

subtest 'one ref: by id, by OpenAI call id, other tenant, unknown, terminal' => sub {
	my $c = fx_call($t, $tid, status => 'running', openai_call_id => 'rtc_g0_a');
	my $o = fx_call($t, $other, status => 'running', openai_call_id => 'rtc_g0_b');
	is(sql_cancel($tid, 'call', $o)->{outcome}, 'not_found', "another tenant's call: not_found");
	is(sql_cancel($tid, 'call_or_openai', 'rtc_g0_b')->{outcome}, 'not_found', "... by OpenAI id: not_found");
	is(sql_cancel($tid, 'call', fx_uuid())->{outcome}, 'not_found', 'unknown id: not_found');
	is(sql_cancel($tid, 'call', 'not-a-uuid')->{outcome}, 'not_found', 'not a UUID: not_found');
	my $r = sql_cancel($tid, 'call_or_openai', 'rtc_g0_a');
	is_deeply([ @$r{qw(outcome status cancelled_count resource_uuid tenant_id outbox_n)} ],
		[ 'cancelled', 'cancelled', 1, $c, $tid, 1 ], 'by OpenAI call id: cancelled, one outbox row');
	$r = sql_cancel($tid, 'call_or_openai', $c);
	is_deeply([ @$r{qw(outcome status)} ], [ 'terminal', 'cancelled' ], 'again by id: terminal');
	is(sql_cancel($other, 'call', $o)->{outcome}, 'cancelled', "the other tenant's own cancel works");
};

subtest 'one call, the fast path (015): refs as callstop_uuid_or_null() takes them' => sub {
	my $c = fx_call($t, $tid, status => 'running', livekit_room => 'room-g0-refs');
	(my $bare = $c) =~ tr/-//d;
	(my $wrong = $c) =~ s/^./g/;    # 36 characters, not hex
	for my $ref ("{$c}", $bare, " $c", "$c ", $wrong, substr($c, 0, 35), "${c}0") {
		is(sql_cancel($tid, 'call', $ref)->{outcome}, 'not_found', "'$ref': not_found, as before");
	}
	is(sql_cancel($other, 'call', $c)->{outcome}, 'not_found', "by another tenant: not_found");
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$c'"), 'running', '... the call still running');
	my $rows = $t->psql(<<~"SQL");
		BEGIN;
		SET LOCAL track_functions = 'all';
		SELECT outcome, resource_uuid FROM callstop_cancel($tid, '{call}', ARRAY[upper('$c')], false, 'test', NULL,
		  'r-upper', 'cancelled', '{livekit}');
		SELECT coalesce(pg_stat_get_xact_function_calls('callstop_event_wanted'::regproc), 0);
		COMMIT;
		SQL
	is_deeply($rows->[0], [ 'cancelled', $c ], 'its id in capitals: cancelled');
	is($rows->[1][0], 0, '... its endpoint probe inline (callstop_event_wanted() not called)');
	is_deeply($t->psql("SELECT key_kind, announce FROM cancel_history WHERE call_id = '$c'"), [ [ 'api_key', 'f' ] ],
		'... its history row');
};

subtest 'a marked history row wakes the delivery children, whoever writes it (015, 017)' => sub {
	my $c = fx_call($t, $tid, status => 'cancelled');
	my $heard = sub ($announce) {
		my $rows = $t->psql(<<~"SQL");
			LISTEN callstop_webhook;
			INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route, announce)
			VALUES ($tid, 'call', '$c', false, 1, 'test', $announce);
			SELECT 'done';
			SQL
		return scalar grep { $_->[0] =~ /^Asynchronous notification "callstop_webhook"/ } @$rows;
	};
	is($heard->('true'), 1, 'a marked row: NOTIFY callstop_webhook');
	is($heard->('false'), 0, 'an unmarked row: none');
	$t->psql("UPDATE cancel_history SET announce = false WHERE call_id = '$c'");
};

done_testing;
