#!/usr/bin/perl
# GET /api/v1/calls (SPEC 4.1) on a tenant with 1 000 000 calls: every filter
# combination (none, agentId, status, agentId+status; without and with a date
# range) is answered by an index scan that reads only the page: no Seq Scan,
# no Sort, the filters in the Index Cond.  Checked three ways:
#   1. EXPLAIN of the four list statements as src/common/statements.c defines them
#      (DB_HEPPU_LIST*), prepared as callstopd prepares them, under both a
#      custom and a generic plan, and EXPLAIN ANALYZE: rows read <= the page;
#   2. auto_explain of the statements callstopd really runs for requests
#      through nginx;
#   3. timings of 50 requests per filter through nginx (printed, not asserted).
# CALLSTOP_LIST_ROWS=N loads N calls instead of 1 000 000 (for a quick run).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Statements;
use JSON::PP ();
use POSIX qw(strftime);
use Time::HiRes qw(time);

my $N = $ENV{CALLSTOP_LIST_ROWS} // 1_000_000;

my $t = CallstopTest->new(workers => 2);
my $JSON = JSON::PP->new->utf8->canonical;

my $big = $t->tenant('bigco', workspace_id => 'ws_big');
my $small = $t->tenant('smallco', workspace_id => 'ws_small');
my $key = $t->key(tenant => 'bigco', frontend_id => 'fe1');

# ---- the load ------------------------------------------------------------------------------

# 200 agents; statuses of every kind, the active ones rare (~0.6%); one call
# every 31 s from 2025-01-01 (a year for a million); one in ten in one of 50
# batches.  A bulk load as one would do it: the secondary indexes of
# voice_call_logs are dropped and rebuilt from their own definitions
# (pg_indexes) around the INSERT, foreign-key triggers are skipped for the
# load (session_replication_role; the data refers only to rows made here).
{
	my $t0 = time;
	my $indexes = q{SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'voice_call_logs'
		AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname};
	my $defs = $t->psql($indexes);
	$t->psql(join '', map { "DROP INDEX $_->[0];\n" } @$defs);
	$t->psql(<<"SQL");
INSERT INTO voice_call_batches (tenant_id, job_id, status)
	SELECT $big, 'batch-big-' || b, 'completed' FROM generate_series(1, 50) b;
SET session_replication_role = replica;
INSERT INTO voice_call_logs (tenant_id, batch_id, agent_id, to_number, status, created_at, started_at, ended_at, end_reason)
SELECT $big,
	CASE WHEN g % 10 = 0 THEN (b.ids)[1 + g % 50] END,
	'agent-' || (g * 7 % 200),
	'+1555' || lpad((g % 10000000)::text, 7, '0'),
	s.status,
	ts,
	ts + interval '3 s',
	CASE WHEN s.status NOT IN ('initiated', 'connecting', 'ringing', 'running') THEN ts + interval '2 min' END,
	CASE WHEN s.status NOT IN ('initiated', 'connecting', 'ringing', 'running') THEN s.status END
FROM (SELECT array_agg(id ORDER BY job_id) AS ids FROM voice_call_batches WHERE tenant_id = $big) b
CROSS JOIN generate_series(1, $N) g
CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + g * interval '31 s' AS ts) t
CROSS JOIN LATERAL (SELECT CASE
	WHEN g % 1000 < 450 THEN 'ended'
	WHEN g % 1000 < 600 THEN 'completed'
	WHEN g % 1000 < 700 THEN 'no_answer'
	WHEN g % 1000 < 760 THEN 'busy'
	WHEN g % 1000 < 800 THEN 'declined'
	WHEN g % 1000 < 820 THEN 'rejected'
	WHEN g % 1000 < 880 THEN 'failed'
	WHEN g % 1000 < 920 THEN 'error'
	WHEN g % 1000 < 950 THEN 'not_reachable'
	WHEN g % 1000 < 994 THEN 'cancelled'
	WHEN g % 1000 < 996 THEN 'running'
	WHEN g % 1000 < 997 THEN 'ringing'
	WHEN g % 1000 < 998 THEN 'connecting'
	ELSE 'initiated' END AS status) s;
INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, created_at)
	SELECT $small, 'agent-' || (g % 200), '+1', 'running', timestamptz '2025-06-01 00:00:00+00' + g * interval '1 min'
	FROM generate_series(1, 5000) g;
SQL
	my $loaded = time - $t0;
	$t->psql("SET maintenance_work_mem = '256MB';\n" . join '', map { "$_->[1];\n" } @$defs);
	$t->psql('ANALYZE voice_call_logs; ANALYZE voice_call_batches;');
	my $took = time - $t0;
	is_deeply($t->psql($indexes), $defs, 'the indexes of voice_call_logs are those of the schema');
	is($t->psql_value("SELECT count(*) FROM voice_call_logs WHERE tenant_id = $big"), $N, "$N calls for one tenant");
	is($t->psql_value("SELECT count(*) FROM voice_call_logs c LEFT JOIN tenants t ON t.id = c.tenant_id"
		. ' LEFT JOIN voice_call_batches b ON b.id = c.batch_id WHERE t.id IS NULL OR (c.batch_id IS NOT NULL AND b.id IS NULL)'),
		0, '... every one referring to a real tenant and batch');
	diag(sprintf('loaded %d calls in %.1f s (INSERT ... SELECT generate_series %.1f s, index rebuild + ANALYZE %.1f s)',
		$N, $took, $loaded, $took - $loaded));
}

# The filters: [name, query string for the HTTP request, agent, status, from, to].
# A week in the middle of the data.
my $mid = 1735689600 + int($N * 31 / 2);    # 2025-01-01 + half the span
my @RANGE = map { strftime('%Y-%m-%dT00:00:00Z', gmtime($mid + $_ * 86400)) } 0, 7;
my @FILTERS;
for my $range (undef, \@RANGE) {
	my @r = $range ? @$range : ('-infinity', 'infinity');
	my $qs = $range ? "&startDate=$range->[0]&endDate=$range->[1]" : '';
	my $rn = $range ? ' + date range' : '';
	push @FILTERS,
		[ "no filter$rn",           "limit=20$qs",                          undef,      undef,       @r ],
		[ "agentId$rn",             "agentId=agent-42&limit=20$qs",         'agent-42', undef,       @r ],
		[ "status (rare)$rn",       "status=active&limit=20$qs",            undef,      'active',    @r ],
		[ "status (common)$rn",     "status=completed&limit=20$qs",         undef,      'completed', @r ],
		[ "agentId+status$rn",      "agentId=agent-42&status=busy&limit=20$qs", 'agent-42', 'busy',   @r ];
}

# ---- plan checks ---------------------------------------------------------------------------


# Checks one plan (the "Plan" object) of the list for a filter; $analyze: rows read
# must not exceed $page_rows.
sub plan_ok ($plan, $f, $what, $page_rows = undef) {
	my ($name, undef, $agent, $status) = @$f;
	my @n = Statements::nodes($plan);
	my @calls = grep { ($_->{'Relation Name'} // '') eq 'voice_call_logs' } @n;
	my $summary = join(' > ', map { $_->{'Node Type'} . ($_->{'Index Name'} ? "[$_->{'Index Name'}]" : '') } @n);
	subtest "$name: $what" => sub {
		is($plan->{'Node Type'}, 'Limit', 'a Limit on top');
		is(scalar @calls, 1, 'voice_call_logs read once') or return;
		my $scan = $calls[0];
		like($scan->{'Node Type'}, qr/^Index (?:Only )?Scan$/, 'voice_call_logs: an Index Scan')
			or diag($summary);
		ok(!(grep { $_->{'Node Type'} =~ /Sort/ } @n), 'no Sort') or diag($summary);
		ok(!(grep { ($_->{'Node Type'} eq 'Seq Scan' || $_->{'Node Type'} =~ /Bitmap/)
			&& ($_->{'Relation Name'} // '') eq 'voice_call_logs' } @n), 'no Seq Scan or bitmap scan of the calls');
		my $cond = $scan->{'Index Cond'} // '';
		like($cond, qr/tenant_id/, 'tenant_id in the Index Cond');
		like($cond, qr/created_at/, 'the date range in the Index Cond');
		like($cond, qr/agent_id/, 'agent_id in the Index Cond') if defined $agent;
		like($cond, qr/heppu_status/, 'heppu_status in the Index Cond') if defined $status;
		ok(!defined $scan->{Filter}, 'no Filter left over the index scan')
			or diag("Filter: $scan->{Filter}");
		if (defined $page_rows) {
			ok($scan->{'Actual Rows'} <= $page_rows, "rows read ($scan->{'Actual Rows'}) <= the page ($page_rows)");
		}
		note("$summary; Index Cond: $cond");
	};
}

# 1. The statements of src/common/statements.c.
my %STMT = Statements::read(($ENV{CALLSTOP_SRCDIR} // "$FindBin::Bin/..") . '/src/common/statements.c', qr/DB_HEPPU_LIST\w*/);
is_deeply([ sort keys %STMT ], [qw(DB_HEPPU_LIST DB_HEPPU_LIST_AGENT DB_HEPPU_LIST_AGENT_STATUS DB_HEPPU_LIST_STATUS)],
	'the four list statements read from src/common/statements.c');

SKIP: {
	skip 'the list statements could not be read from src/common/statements.c', 1 unless keys %STMT == 4;
	for my $f (@FILTERS) {
		my ($name, undef, $agent, $status, $from, $to) = @$f;
		my $id = defined $agent ? (defined $status ? 'DB_HEPPU_LIST_AGENT_STATUS' : 'DB_HEPPU_LIST_AGENT')
			: (defined $status ? 'DB_HEPPU_LIST_STATUS' : 'DB_HEPPU_LIST');
		# The parameters as api_heppu.c binds them: tenant, start, end,
		# limit + 1, offset, [agent], [status].
		my $args = join(', ', $big, "'$from'", "'$to'", 21, 0, map { "'$_'" } grep { defined } $agent, $status);
		for my $mode (qw(force_custom_plan force_generic_plan)) {
			my ($plan, $analyzed) = map { $_->{Plan} } Statements::explain($t, $STMT{$id}, $mode,
				"EXPLAIN (FORMAT JSON) EXECUTE p($args)", "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE p($args)");
			(my $short = $mode) =~ s/^force_|_plan$//g;
			plan_ok($plan, $f, "EXPLAIN of $id, $short plan");
			plan_ok($analyzed, $f, "EXPLAIN ANALYZE of $id, $short plan", 21);
		}
	}
}

# ---- 3. timings through nginx ---------------------------------------------------------

sub pct ($sorted, $p) { return $sorted->[ int($p / 100 * $#$sorted + 0.5) ] }

sub list ($qs) {
	my $r = $t->request(GET => "/api/v1/calls?$qs", headers => { 'x-api-key' => $key });
	return $r;
}

for my $f (@FILTERS) {
	my ($name, $qs) = @$f;
	my $r = list($qs);
	is($r->{status}, 200, "$name: 200") or diag($r->{body});
	my @ms;
	for (1 .. 50) {
		my $t0 = time;
		my $x = list($qs);
		push @ms, (time - $t0) * 1000;
		$x->{status} == 200 or do { fail("$name: a request failed: $x->{status}"); last };
	}
	@ms = sort { $a <=> $b } @ms;
	diag(sprintf('%-32s 50 requests through nginx: p50 %6.2f ms  p99 %6.2f ms  (%d calls on the page)',
		$name, pct(\@ms, 50), pct(\@ms, 99), scalar @{ $r->{json}{data}{calls} // [] }));
}
{
	my $t0 = time;
	my $r = list('limit=100&page=1000');
	diag(sprintf('for comparison, a deep page (limit=100&page=1000, OFFSET 99900): %.1f ms', (time - $t0) * 1000));
	is($r->{status}, 200, 'a deep page: 200');
}

# ---- 2. auto_explain of what callstopd runs ----------------------------------------------------

SKIP: {
	my $lib = $t->psql_value(q{SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'});
	skip 'auto_explain is not installed', 1 unless $lib && -e "$lib/auto_explain.so";
	$t->psql(q{
		ALTER DATABASE callstop SET session_preload_libraries = 'auto_explain';
		ALTER DATABASE callstop SET auto_explain.log_min_duration = 0;
		ALTER DATABASE callstop SET auto_explain.log_format = 'json';
		ALTER DATABASE callstop SET auto_explain.log_analyze = on;
		ALTER DATABASE callstop SET auto_explain.log_timing = off;
	});
	$t->restart_callstopd;    # new connections, with auto_explain
	my $log_from = length $t->pg_log;
	# 8 requests per filter: past the 5 custom plans after which
	# PostgreSQL may switch a prepared statement to a generic plan.
	for my $f (@FILTERS) {
		for (1 .. 8) {
			my $r = list($f->[1]);
			$r->{status} == 200 or fail("$f->[0]: $r->{status}");
		}
	}
	$t->stop_callstopd;
	my @plans;
	my $log = substr($t->pg_log, $log_from);
	while ($log =~ /LOG:  duration: [\d.]+ ms  plan:\n((?:[ \t].*\n)+)/g) {
		my $p = eval { $JSON->decode($1) } or next;
		push @plans, $p if ($p->{'Query Text'} // '') =~ /FROM voice_call_logs c .* ORDER BY c\.created_at DESC/s;
	}
	is(scalar @plans, 8 * @FILTERS, 'auto_explain logged a plan for every list request') or diag(scalar @plans);
	my $i = 0;
	for my $f (@FILTERS) {
		my @mine = @plans[ $i * 8 .. $i * 8 + 7 ];
		$i++;
		my $bad = 0;
		for my $p (grep { defined } @mine) {
			my @n = Statements::nodes($p->{Plan});
			my ($scan) = grep { ($_->{'Relation Name'} // '') eq 'voice_call_logs' } @n;
			$bad++ unless $scan && $scan->{'Node Type'} =~ /^Index (?:Only )?Scan$/ && !(grep { $_->{'Node Type'} =~ /Sort/ } @n)
				&& $scan->{'Actual Rows'} <= 21;
		}
		is($bad, 0, "$f->[0]: callstopd's 8 executions all ran an Index Scan reading <= 21 rows, no Sort");
		plan_ok($mine[-1]{Plan}, $f, "callstopd's last execution (auto_explain)", 21) if $mine[-1];
	}
}

done_testing();
