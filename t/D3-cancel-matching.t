#!/usr/bin/perl
# Cancel by filter (SPEC 10.2): each filter alone and combined; the dry run
# returns the real run's counts and changes nothing; more matches than max is
# 409 too_many_matches with the counts and nothing changed; no filter, both
# filter and all_active, bad fields: 400, nothing changed; other tenants are
# never matched; history rows with the filter; 401/403.  Then the plans of
# the matching queries, as callstop_cancel_matching() runs them (auto_explain
# of nested statements), on a tenant with 50 000 ended calls and 50 000
# pending entries: an index serves each filter, no Seq Scan.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Statements;
use JSON::PP ();

my $t = CallstopTest->new(workers => 2);
my $JSON = JSON::PP->new->utf8->canonical;
my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $other = $t->tenant('other');
my $kother = $t->key(tenant => 'other', frontend_id => 'fe1');
my $n = 0;

# A tenant of its own per case, so that a filter sees only what the case made:
#   ca  agent A, number N1, running,   2026-01-01
#   cb  agent A, number N2, ringing,   2026-01-02
#   cc  agent B, number N1, initiated, 2026-01-03
#   cd  agent A, number N1, completed  (terminal: never matched)
#   ce  agent A, number N1, initiated, in batch J (entry 1, started); entries
#       2 (N1), 3 and 4 (N3) pending
#   and in the other tenant: a running call of agent A to N1, a batch J
#   with a pending entry to N1.
sub setup () {
	$n++;
	my %d = (tag => $n, agent => "agent-a$n", agent_b => "agent-b$n", n1 => "+1777100$n", n2 => "+1777200$n",
		n3 => "+1777300$n", job => "batch-m$n");
	$d{tenant} = $t->tenant("m$n");
	$d{key} = $t->key(tenant => "m$n", frontend_id => 'fe1');
	$d{ca} = fx_call($t, $d{tenant}, status => 'running', agent_id => $d{agent}, to_number => $d{n1});
	$d{cb} = fx_call($t, $d{tenant}, status => 'ringing', agent_id => $d{agent}, to_number => $d{n2});
	$d{cc} = fx_call($t, $d{tenant}, status => 'initiated', agent_id => $d{agent_b}, to_number => $d{n1});
	$d{cd} = fx_call($t, $d{tenant}, status => 'completed', agent_id => $d{agent}, to_number => $d{n1});
	$t->psql(sprintf q{UPDATE voice_call_logs SET created_at = '2026-01-0%d T10:00:00Z' WHERE id = '%s'}, @$_)
		for [ 1, $d{ca} ], [ 2, $d{cb} ], [ 3, $d{cc} ], [ 4, $d{cd} ];
	$d{batch} = fx_batch($t, $d{tenant}, $d{job}, 4);
	$t->psql(qq{UPDATE voice_call_batch_entries SET to_number = CASE WHEN id IN (SELECT min(id) FROM voice_call_batch_entries
		WHERE batch_id = '$d{batch}') OR to_number = '+15550000002' THEN '$d{n1}' ELSE '$d{n3}' END WHERE batch_id = '$d{batch}'});
	my ($e) = fx_claim($t, $d{batch}, 'd1', 1);
	$d{ce} = fx_start($t, $e, 'd1', agent => $d{agent});
	$t->psql("UPDATE voice_call_logs SET created_at = '2026-01-05T10:00:00Z' WHERE id = '$d{ce}'");
	$d{theirs} = fx_call($t, $other, status => 'running', agent_id => $d{agent}, to_number => $d{n1});
	$d{their_batch} = fx_batch($t, $other, $d{job}, 1);
	$t->psql("UPDATE voice_call_batch_entries SET to_number = '$d{n1}' WHERE batch_id = '$d{their_batch}'");
	return \%d;
}

sub matching ($d, $body) { return $t->api(POST => '/calls/cancel-matching', key => $d->{key}, frontend => 'fe1', json => $body) }
sub active_calls ($tenant) {
	return $t->psql_value("SELECT count(*) FROM voice_call_logs WHERE tenant_id = $tenant
		AND status IN ('initiated', 'connecting', 'ringing', 'running')") + 0;
}

# The dry run, then the real run: same counts; the calls cancelled are want.
sub case ($name, $filter, $want_calls, $want_entries, %o) {
	subtest $name => sub {
		my $d = setup();
		my $f = ref $filter eq 'CODE' ? $filter->($d) : $filter;
		my %body = ((ref $f eq 'HASH' ? (filter => $f) : (all_active => $T)), include_pending_entries => $o{entries} ? $T : $F);
		my @want = sort map { $d->{$_} } @$want_calls;
		my $theirs = fx_snapshot($t, tenant => $other);
		my $before = fx_snapshot($t);
		my $dry = matching($d, { %body, dry_run => $T });
		is($dry->{status}, 200, 'dry run: status 200') or diag($dry->{body});
		is_deeply([ @{ $dry->{json} }{qw(dry_run matched_calls matched_entries cancelled_count)} ],
			[ $T, scalar @want, $want_entries, @want + $want_entries ], 'dry run: counts') or diag($dry->{body});
		is_deeply([ sort map { $_->{call_log_id} } @{ $dry->{json}{calls} } ], \@want, 'dry run: the calls it would cancel');
		is_deeply(fx_snapshot($t), $before, 'the dry run changed nothing');

		my $r = matching($d, \%body);
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is_deeply([ @{ $r->{json} }{qw(dry_run matched_calls matched_entries cancelled_count)} ],
			[ $F, @{ $dry->{json} }{qw(matched_calls matched_entries cancelled_count)} ], 'the real run: the dry run\'s counts');
		is($r->{json}{message}, sprintf('%d call(s) and %d pending entries cancelled.', scalar @want, $want_entries), 'message');
		is_deeply([ sort map { $_->{call_log_id} } @{ $r->{json}{calls} } ], \@want, 'calls: the ones cancelled');
		is_deeply([ map { [ $_->{status}, $_->{message} ] } @{ $r->{json}{calls} } ], [ map { [ 'cancelled', 'Call cancelled.' ] } @want ],
			'each: cancelled, "Call cancelled."');
		is($t->psql_value(sprintf q{SELECT count(*) FROM voice_call_logs WHERE id IN (%s) AND status = 'cancelled'},
			join(',', map { "'$_'" } @want) || 'NULL'), scalar @want, 'those calls are cancelled');
		is(active_calls($d->{tenant}), 4 - @want, 'the others run on');
		is_deeply(fx_snapshot($t, tenant => $other), $theirs, 'the other tenant: nothing changed');
		fx_counters_ok($t, $d->{batch}, 'counters equal the entry counts');
		my $h = fx_history($t);
		my @mine = grep { ($_->{request_id} // '') eq ($r->{headers}{'x-request-id'} // '-') } @$h;
		is(scalar(grep { $_->{resource_type} eq 'call' } @mine), scalar @want, 'one history row per call');
		is(scalar(grep { $_->{resource_type} eq 'batch' } @mine), $want_entries ? 1 : 0, 'one per batch whose entries it cancelled');
		is_deeply([ map { $_->{action} } @mine ], [ ('cancel_matching') x @mine ], 'action cancel_matching');
		is_deeply([ sort keys %{ $mine[0]{filter} } ], [ sort keys %{ ref $f eq 'HASH' ? $f : {} } ], 'the filter recorded')
			if @mine;
	};
}

case('agent_id', sub ($d) { { agent_id => $d->{agent} } }, [qw(ca cb ce)], 0);
case('agent_id, include_pending_entries: entries have no agent', sub ($d) { { agent_id => $d->{agent} } }, [qw(ca cb ce)], 0,
	entries => 1);
case('to_number', sub ($d) { { to_number => $d->{n1} } }, [qw(ca cc ce)], 0);
case('to_number with entries', sub ($d) { { to_number => $d->{n1} } }, [qw(ca cc ce)], 1, entries => 1);
case('batch_job_id', sub ($d) { { batch_job_id => $d->{job} } }, [qw(ce)], 0);
case('batch_job_id with entries', sub ($d) { { batch_job_id => $d->{job} } }, [qw(ce)], 3, entries => 1);
case('status', { status => ['ringing'] }, [qw(cb)], 0);
case('status, two', { status => [ 'ringing', 'running' ] }, [qw(ca cb)], 0);
case('created_after', { created_after => '2026-01-02T10:00:00Z' }, [qw(cb cc ce)], 0);
case('created_before', { created_before => '2026-01-02T10:00:00Z' }, [qw(ca)], 0);
case('created range', { created_after => '2026-01-02T00:00:00Z', created_before => '2026-01-04' }, [qw(cb cc)], 0);
case('agent_id + to_number', sub ($d) { { agent_id => $d->{agent}, to_number => $d->{n1} } }, [qw(ca ce)], 0);
case('agent_id + status + created_before', sub ($d) { { agent_id => $d->{agent}, status => ['initiated'],
	created_before => '2026-01-06T00:00:00+00:00' } }, [qw(ce)], 0);
case('to_number + batch_job_id with entries', sub ($d) { { to_number => $d->{n1}, batch_job_id => $d->{job} } }, [qw(ce)], 1,
	entries => 1);
case('all_active', undef, [qw(ca cb cc ce)], 0);
case('all_active with entries', undef, [qw(ca cb cc ce)], 3, entries => 1);
case('nothing matches', { agent_id => 'nobody' }, [], 0);

subtest 'max exceeded: 409 too_many_matches, nothing changed' => sub {
	my $d = setup();
	my $before = fx_snapshot($t);
	my $r = matching($d, { filter => { to_number => $d->{n1} }, include_pending_entries => $T, max => 3 });
	is_deeply([ $r->{status}, $r->{json}{error}{code}, $r->{json}{matched_calls}, $r->{json}{matched_entries} ],
		[ 409, 'too_many_matches', 3, 1 ], '409 too_many_matches, 3 calls + 1 entry') or diag($r->{body});
	is_deeply([ sort keys %{ $r->{json} } ], [qw(error matched_calls matched_entries request_id)], 'SPEC 3 body + the counts');
	is($r->{json}{request_id}, $r->{headers}{'x-request-id'}, 'request_id');
	is($r->{json}{error}{message}, '3 call(s) and 1 pending entries match, more than max 3; nothing was cancelled', 'message');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
	is(matching($d, { filter => { to_number => $d->{n1} }, include_pending_entries => $T, max => 3, dry_run => $T })->{status},
		409, 'a dry run over max: 409 too');
	is(matching($d, { filter => { to_number => $d->{n1} }, include_pending_entries => $T, max => 4 })->{json}{cancelled_count},
		4, 'max = the matches: cancelled');
};

subtest 'bad input: 400, nothing changed; 401, 403' => sub {
	my $d = setup();
	my $before = fx_snapshot($t);
	for my $c (
		[ {}, 'no filter' ],
		[ { filter => {} }, 'an empty filter' ],
		[ { filter => { unknown => 1 } }, 'only unknown fields' ],
		[ { filter => { agent_id => 'x' }, all_active => $T }, 'both filter and all_active' ],
		[ { all_active => $F }, 'all_active false alone' ],
		[ { filter => [] }, 'filter a list' ],
		[ { filter => { agent_id => '' } }, 'empty agent_id' ],
		[ { filter => { agent_id => 7 } }, 'agent_id a number' ],
		[ { filter => { to_number => 'x' x 129 } }, 'to_number over 128 bytes' ],
		[ { filter => { status => ['completed'] } }, 'a terminal status' ],
		[ { filter => { status => [] } }, 'an empty status list' ],
		[ { filter => { status => 'running' } }, 'status a string' ],
		[ { filter => { created_after => 'yesterday' } }, 'created_after not RFC 3339' ],
		[ { filter => { created_before => '2026-13-01T00:00:00Z' } }, 'created_before no real day' ],
		[ { filter => { agent_id => 'x' }, max => 0 }, 'max 0' ],
		[ { filter => { agent_id => 'x' }, max => 10001 }, 'max 10001' ],
		[ { filter => { agent_id => 'x' }, max => 1.5 }, 'max 1.5' ],
		[ { filter => { agent_id => 'x' }, max => '10' }, 'max a string' ],
		[ { filter => { agent_id => 'x' }, dry_run => 'yes' }, 'dry_run a string' ],
		[ { filter => { agent_id => 'x' }, include_pending_entries => 1 }, 'include_pending_entries a number' ],
	) {
		is_unified_error(matching($d, $c->[0]), 400, 'invalid_request', $c->[1]);
	}
	is_unified_error($t->api(POST => '/calls/cancel-matching', key => $d->{key}, frontend => 'fe1', body => '{"filter":',
		content_type => 'application/json'), 400, 'invalid_json', 'bad JSON');
	is_unified_error($t->api(POST => '/calls/cancel-matching', frontend => 'fe1', json => { all_active => $T }), 401,
		'unauthorized', 'no key');
	is_unified_error($t->api(POST => '/calls/cancel-matching', key => $d->{key}, frontend => 'fe2', json => { all_active => $T }),
		403, 'forbidden', 'another frontend');
	is_deeply(fx_snapshot($t), $before, 'nothing changed');
};

# ---- the plans -------------------------------------------------------------------------------

SKIP: {
	my $lib = $t->psql_value(q{SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'});
	skip 'auto_explain is not installed', 1 unless $lib && -e "$lib/auto_explain.so";
	my $d = setup();
	my $tn = $d->{tenant};
	$t->psql(qq{
		INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($tn, 'batch-big', 'processing');
		INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, created_at, ended_at, end_reason)
			SELECT $tn, 'agent-' || (g % 100), '+1888' || lpad(g::text, 7, '0'), 'ended',
				timestamptz '2025-01-01' + g * interval '1 min', now(), 'ended' FROM generate_series(1, 50000) g;
		INSERT INTO voice_call_batch_entries (batch_id, to_number)
			SELECT (SELECT id FROM voice_call_batches WHERE tenant_id = $tn AND job_id = 'batch-big'),
				'+1999' || lpad(g::text, 7, '0') FROM generate_series(1, 50000) g;
		ANALYZE voice_call_logs; ANALYZE voice_call_batch_entries; ANALYZE voice_call_batches;
	});
	# each filter, and the index made for it (sql/010_campaign.sql, sql/001_schema.sql): any
	# other index would read every active call of the tenant
	my @filters = (
		[ agent_id => { agent_id => $d->{agent} }, 'voice_call_logs_active_agent_idx' ],
		[ to_number => { to_number => $d->{n1} }, 'voice_call_logs_active_number_idx' ],
		[ batch_job_id => { batch_job_id => $d->{job} }, 'voice_call_logs_batch_active_idx' ],
		[ status => { status => ['running'] }, 'voice_call_logs_active_created_idx' ],
		[ created_range => { created_after => '2026-01-01T00:00:00Z', created_before => '2026-02-01T00:00:00Z' },
			'voice_call_logs_active_created_idx' ],
	);
	my $log_from = length $t->pg_log;
	$t->psql(join "\n", q{LOAD 'auto_explain';}, q{SET auto_explain.log_min_duration = 0;},
		q{SET auto_explain.log_nested_statements = on;}, q{SET auto_explain.log_format = 'json';},
		map { sprintf q{SELECT outcome FROM callstop_cancel_matching(%d, '%s', false, true, true, 1000, 'test', NULL, 'x', '{}');},
			$tn, $JSON->encode($_->[1]) } @filters);
	my $log = substr($t->pg_log, $log_from);
	my @plans;
	while ($log =~ /LOG:  duration: [\d.]+ ms  plan:\n((?:[ \t].*\n)+)/g) {
		my $p = eval { $JSON->decode($1) } or next;
		push @plans, $p;
	}
	for my $f (@filters) {
		my ($calls) = grep { ($_->{'Query Text'} // '') =~ /FROM voice_call_logs c WHERE/
			&& index($_->{'Query Text'}, { agent_id => 'c.agent_id', to_number => 'c.to_number', batch_job_id => 'c.batch_id',
				status => 'c.status = ANY', created_range => 'c.created_at >=' }->{ $f->[0] }) >= 0 } @plans;
		ok($calls, "$f->[0]: the calls query was logged") or next;
		my @n = Statements::nodes($calls->{Plan});
		my @scans = grep { ($_->{'Relation Name'} // '') eq 'voice_call_logs' } @n;
		ok(@scans && !(grep { $_->{'Node Type'} eq 'Seq Scan' } @scans), "$f->[0]: voice_call_logs read by an index")
			or diag(join ', ', map { "$_->{'Node Type'} " . ($_->{'Index Name'} // '') } @scans);
		note("$f->[0]: " . join ', ', map { "$_->{'Node Type'} " . ($_->{'Index Name'} // '') } @scans);
		is_deeply([ grep { /^voice_call_logs_/ } map { $_->{'Index Name'} // () } @n ], [ $f->[2] ], "$f->[0]: by $f->[2]");
	}
	my ($entries) = grep { ($_->{'Query Text'} // '') =~ /FROM voice_call_batch_entries e.*e\.to_number = \$3/s } @plans;
	ok($entries, 'to_number: the entries query was logged');
	my @es = $entries ? grep { ($_->{'Relation Name'} // '') eq 'voice_call_batch_entries' } Statements::nodes($entries->{Plan}) : ();
	ok(@es && !(grep { $_->{'Node Type'} eq 'Seq Scan' } @es), 'to_number: entries read by an index')
		or diag(join ', ', map { $_->{'Node Type'} } @es);
	is_deeply([ grep { /^voice_call_batch_entries_/ } map { $_->{'Index Name'} // () } $entries ? Statements::nodes($entries->{Plan}) : () ],
		['voice_call_batch_entries_open_number_idx'],
		'to_number: by voice_call_batch_entries_open_number_idx');
}

done_testing();

