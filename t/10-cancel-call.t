#!/usr/bin/perl
# POST /calls/cancel on calls (SPEC 3.1, the call rows of the table; SPEC 6
# for the "not configured" wording; invariants 3 and 4).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel single);
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $key_id = $t->psql_value('SELECT id FROM api_keys');

my $LK = ' LiveKit not configured; room not terminated.';
my $OA = ' OpenAI not configured; call not hung up.';
my @ACTIVE = qw(initiated connecting ringing running);
my @TERMINAL = qw(completed ended cancelled failed error declined rejected busy no_answer not_reachable);

sub call_row ($id) {
	return fx_row($t, qq{SELECT status, ended_at IS NOT NULL AS ended, end_reason,
		ended_at >= created_at AND ended_at <= now() AS ended_sane
		FROM voice_call_logs WHERE id = '$id'});
}

# ---- active states: cancelled, count 1, the message by what it had running -----

my %targets = (
	'no targets'    => [ {}, '' ],
	'livekit only'  => [ { livekit_room => 'room' }, $LK ],
	'openai only'   => [ { openai_call_id => 'rtc' }, $OA ],
	'livekit+openai' => [ { livekit_room => 'room', openai_call_id => 'rtc' }, $LK . $OA ],
);
my $n = 0;
for my $state (@ACTIVE) {
	for my $variant (sort keys %targets) {
		my ($cols, $suffix) = @{ $targets{$variant} };
		$n++;
		my %c = map { $_ => "$cols->{$_}-$n" } keys %$cols;
		subtest "$state call, $variant" => sub {
			my $id = fx_call($t, $tid, status => $state, %c);
			my $hist_before = fx_history_count($t);
			my $force = $n % 2 ? JSON::PP::false : JSON::PP::true;
			my $r = cancel({ resource_id => $id, force => $force });
			is($r->{status}, 200, 'status 200') or diag($r->{body});
			like($r->{headers}{'content-type'} // '', qr{^application/json\b}, 'JSON content type');
			is_deeply($r->{json}, single({ resource_id => $id, resource_type => 'call', status => 'cancelled',
				cancelled_count => 1, message => "Call cancelled.$suffix" }), 'answer');
			is_deeply(call_row($id), { status => 'cancelled', ended => JSON::PP::true, end_reason => 'cancelled',
				ended_sane => JSON::PP::true }, 'row: cancelled, ended_at and end_reason set');
			is(fx_history_count($t), $hist_before + 1, 'one history row');
			my $h = fx_history($t, call => $id);
			is(scalar @$h, 1, 'one history row for this call');
			is_deeply([ @{ $h->[0] }{qw(tenant_id resource_type batch_id force cancelled_count key_id request_id action)} ],
				[ $tid, 'call', undef, $force ? JSON::PP::true : JSON::PP::false, 1, $key_id,
					$r->{headers}{'x-request-id'}, 'cancel' ],
				'history: tenant, type, force, count, key id, request id');
			my @want;
			push @want, { provider => 'livekit', target => $c{livekit_room}, state => 'failed' } if $c{livekit_room};
			push @want, { provider => 'openai', target => $c{openai_call_id}, state => 'failed' } if $c{openai_call_id};
			my $ob = fx_outbox($t, $id);
			is_deeply([ map { { provider => $_->{provider}, target => $_->{target}, state => $_->{state} } } @$ob ],
				\@want, 'termination outbox: one failed row per target');
			like($_->{last_error} // '', qr/not configured/i, "$_->{provider}: last_error says not configured")
				for @$ob;
		};
	}
}

# ---- terminal states: nothing changes ---------------------------------------------

for my $state (@TERMINAL) {
	subtest "$state call" => sub {
		my $id = fx_call($t, $tid, status => $state, livekit_room => "room-t-$state");
		my $before = fx_snapshot($t);
		my $r = cancel({ resource_id => $id, force => JSON::PP::true });
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply($r->{json}, single({ resource_id => $id, resource_type => 'call', status => $state,
			cancelled_count => 0, message => "Call already in terminal state: $state" }), 'answer');
		is_deeply(fx_snapshot($t), $before, 'nothing changed (no history row, no outbox row)');
	};
}

# ---- not found --------------------------------------------------------------------

for my $case ([ 'unknown UUID', fx_uuid() ], [ 'unknown upper-case UUID', uc fx_uuid() ],
	[ 'not a UUID', 'call-12345' ], [ 'a number as a string', '42' ],
	[ 'UUID with trailing junk', fx_uuid() . 'x' ], [ 'job_id without batch- is a call id', 'batch_1' ],
	[ 'UTF-8 id', "caf\x{e9}-\x{fc}-\x{20ac}" ])
{
	my ($name, $id) = @$case;
	subtest $name => sub {
		my $before = fx_snapshot($t);
		my $r = cancel({ resource_id => $id });
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply($r->{json}, single({ resource_id => $id, resource_type => 'call', status => 'not_found',
			cancelled_count => 0, message => 'Call not found' }), 'answer');
		is_deeply(fx_snapshot($t), $before, 'nothing changed');
	};
}

# A NUL cannot be carried by an id (C strings, PostgreSQL text): rather than
# cut "a\u0000b" short to "a", the request is refused and nothing changes.
subtest 'an id with an escaped NUL is refused' => sub {
	my $before = fx_snapshot($t);
	my $r = cancel({ resource_id => "a\x{0}b" });
	is($r->{status}, 400, 'status 400') or diag($r->{body});
	is($r->{json}{error}{code}, 'invalid_json', 'invalid_json');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

# An id that is a batch's UUID is still a call id (only batch- names a batch).
subtest 'a batch UUID is looked up as a call' => sub {
	my $b = fx_batch($t, $tid, 'batch-uuid-as-call', 2);
	my $before = fx_snapshot($t);
	my $r = cancel({ resource_id => $b });
	is_deeply($r->{json}, single({ resource_id => $b, resource_type => 'call', status => 'not_found',
		cancelled_count => 0, message => 'Call not found' }), 'not_found call');
	is_deeply(fx_snapshot($t), $before, 'the batch did not change');
};

# ---- case of UUIDs ------------------------------------------------------------------

subtest 'upper-case UUID of an existing call' => sub {
	my $id = fx_call($t, $tid, status => 'ringing');
	my $given = uc $id;
	my $r = cancel({ resource_id => $given });
	is($r->{status}, 200, 'status 200');
	is_deeply($r->{json}, single({ resource_id => $given, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => 'Call cancelled.' }), 'matched; the result echoes the id as given');
	is(call_row($id)->{status}, 'cancelled', 'the call is cancelled');
	is(scalar @{ fx_history($t, call => $id) }, 1, 'one history row');

	my $before = fx_snapshot($t);
	$r = cancel({ resource_id => $given });
	is_deeply($r->{json}, single({ resource_id => $given, resource_type => 'call', status => 'cancelled',
		cancelled_count => 0, message => 'Call already in terminal state: cancelled' }),
		'again: already terminal');
	is_deeply(fx_snapshot($t), $before, '... nothing changed');
};

subtest 'mixed-case UUID' => sub {
	my $id = fx_call($t, $tid, status => 'connecting');
	(my $given = $id) =~ s/([a-f])/int(rand 2) ? uc $1 : $1/ge;
	substr($given, 0, 8) = uc substr($given, 0, 8);
	my $r = cancel({ resource_id => [$given] });
	is_deeply($r->{json}, { results => [ { resource_id => $given, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => 'Call cancelled.' } ], total_cancelled => 1 },
		'list answer (no flat fields), id echoed as given');
	is(call_row($id)->{status}, 'cancelled', 'cancelled');
};

# ---- the single-string answer vs the list answer ------------------------------------

subtest 'JSON types of the answer' => sub {
	my $id = fx_call($t, $tid, status => 'running');
	my $res = { resource_id => 'string', resource_type => 'string', status => 'string', cancelled_count => 'number',
		message => 'string' };
	is_deeply(fx_types(cancel({ resource_id => $id })->{body}), { results => [$res], total_cancelled => 'number', %$res },
		'single id: counts are numbers, the rest strings');
	is_deeply(fx_types(cancel({ resource_id => [ $id, 'nope' ] })->{body}),
		{ results => [ $res, $res ], total_cancelled => 'number' }, 'list');
};

subtest 'list of one: no flat fields' => sub {
	my $id = fx_call($t, $tid, status => 'running');
	my $r = cancel({ resource_id => [$id] });
	is_deeply($r->{json}, { results => [ { resource_id => $id, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => 'Call cancelled.' } ], total_cancelled => 1 }, 'answer');
};

subtest 'unknown fields are ignored; force defaults to false' => sub {
	my $id = fx_call($t, $tid, status => 'running');
	my $r = cancel({ resource_id => $id, reason => 'customer asked', extra => { a => [1] } });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is($r->{json}{status}, 'cancelled', 'cancelled');
	is(fx_history($t, call => $id)->[0]{force}, JSON::PP::false, 'history: force false');
};

# ---- a call of a batch, cancelled explicitly ------------------------------------------

subtest 'call in a batch: its entry is cancelled and the counters move' => sub {
	my $b = fx_batch($t, $tid, 'batch-call-1', 4);
	my @e = fx_claim($t, $b, 'd1', 2);
	my $c1 = fx_start($t, $e[0], 'd1', room => 'room-b1');
	ok($c1, 'dialer started a call');
	is(fx_report($t, $c1, 'running'), 'running', 'reported running');
	is_deeply(fx_counters($t, $b), { total => 4, pending => 2, claimed => 1, running => 1, completed => 0,
		failed => 0, cancelled => 0 }, 'counters before');

	my $r = cancel({ resource_id => $c1 });
	is_deeply($r->{json}, single({ resource_id => $c1, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => "Call cancelled.$LK" }), 'answer');
	is($t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e[0]"), 'cancelled',
		'the entry is cancelled');
	is_deeply(fx_counters($t, $b), { total => 4, pending => 2, claimed => 1, running => 0, completed => 0,
		failed => 0, cancelled => 1 }, 'counters moved: running -1, cancelled +1');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'processing',
		'the batch itself is not cancelled');
	is(scalar @{ fx_history($t, batch => $b) }, 0, 'no batch history row');
	is(scalar @{ fx_history($t, call => $c1) }, 1, 'one call history row');

	# The dialer learns it must hang up; nothing un-cancels it.
	is(fx_report($t, $c1, 'completed'), 'cancelled', 'a later dialer report sees cancelled');
	is(call_row($c1)->{status}, 'cancelled', 'still cancelled');
	fx_counters_ok($t, $b, 'counters still equal the entry counts');
};

subtest 'call left running by a graceful batch cancel, then cancelled explicitly' => sub {
	my $b = fx_batch($t, $tid, 'batch-call-2', 3);
	my @e = fx_claim($t, $b, 'd1', 1);
	my $c = fx_start($t, $e[0], 'd1');
	my $r = cancel({ resource_id => 'batch-call-2' });
	is($r->{json}{status}, 'cancelled', 'batch cancelled (force=false)');
	is(call_row($c)->{status}, 'initiated', 'its call still runs');

	$r = cancel({ resource_id => $c });
	is_deeply($r->{json}, single({ resource_id => $c, resource_type => 'call', status => 'cancelled',
		cancelled_count => 1, message => 'Call cancelled.' }), 'the call is cancelled');
	is($t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e[0]"), 'cancelled',
		'its entry is cancelled');
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'cancelled',
		'the batch stays cancelled');
	is_deeply(fx_counters($t, $b), { total => 3, pending => 0, claimed => 0, running => 0, completed => 0,
		failed => 0, cancelled => 3 }, 'counters: all cancelled');
	fx_counters_ok($t, $b, 'counters equal the entry counts');
};

done_testing();
