#!/usr/bin/perl
# The entries pages of GET /calls/status/{batch} (SPEC 3.2) cost the same for
# any batch in any table (issue 11, item 1): on a table of 5 000 000 entries
# where one batch holds 1 000 000 (between 4 000 000 entries of 400 other
# batches) and another 10, every page statement (DB_BATCH_ENTRIES*, read from
# src/common/statements.c and prepared as callstopd prepares them) is served,
# under a custom and under a generic plan, by an index scan of the batch's
# index that reads only the page: no scan of the primary key, no Seq or
# Bitmap scan, nothing removed by a filter; also with statistics that say
# every batch is one entry, or that one batch is the whole table (a status
# page of a batch the statistics make nearly empty is a TODO: there the
# planner's costs tie between the ordered scan and the other plans).  First, deep and last pages are
# then timed through nginx against the 10-entry batch's page (printed, not
# asserted).
# CALLSTOP_PAGES_ROWS=N makes the big batch N entries (the table 5 N) for a
# quick run.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Statements;
use Api qw(api_setup status);
use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP ();
use List::Util qw(max);
use Time::HiRes qw(time);

our $TODO;
my $N = $ENV{CALLSTOP_PAGES_ROWS} // 1_000_000;
my $OTHERS = 400;                 # other batches, 4 N entries between them
my $PER = int(4 * $N / $OTHERS);
my $LIMIT = 100;                  # the page size timed and explained (callstopd asks for limit + 1)

my $t = CallstopTest->new(workers => 2);
my $JSON = JSON::PP->new->utf8->canonical;
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

# ---- the load ------------------------------------------------------------------------------

# One INSERT ... SELECT generate_series: the first 2 N entries in other
# batches, then the big batch (mostly pending; claimed, running, completed,
# failed among them), 2 N more of other batches, then the small batch: the
# primary key order puts millions of other rows before and after the big
# batch's.  The two batch indexes are dropped and rebuilt from their own
# definitions around it, triggers (foreign keys, counters) skipped for the
# load and the counters set from the entries after it.
my (%B, $took);
{
	my $t0 = time;
	my $indexes = q{SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'voice_call_batch_entries'
		AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname};
	my $defs = $t->psql($indexes);
	$t->psql(join '', map { "DROP INDEX $_->[0];\n" } @$defs);
	$t->psql(<<"SQL");
INSERT INTO voice_call_batches (tenant_id, job_id, status)
	SELECT $tid, 'batch-other-' || lpad(b::text, 3, '0'), 'processing' FROM generate_series(1, $OTHERS) b;
INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($tid, 'batch-huge', 'processing'),
	($tid, 'batch-small', 'processing');
SET session_replication_role = replica;
INSERT INTO voice_call_batch_entries (batch_id, to_number, status)
SELECT CASE WHEN g <= 2 * $N OR (g > 3 * $N AND g <= 5 * $N) THEN (o.ids)[1 + (g - 1) / $PER % $OTHERS]
		WHEN g <= 3 * $N THEN huge.id ELSE small.id END,
	'+1555' || lpad((g % 10000000)::text, 7, '0'),
	CASE WHEN g <= 2 * $N OR g > 3 * $N THEN (ARRAY['pending', 'completed', 'cancelled'])[1 + g % 3]
		WHEN g % 100 < 5 THEN 'claimed' WHEN g % 100 < 7 THEN 'running'
		WHEN g % 100 = 7 THEN 'completed' WHEN g % 100 = 8 THEN 'failed' ELSE 'pending' END
FROM (SELECT array_agg(id ORDER BY job_id) AS ids FROM voice_call_batches WHERE job_id LIKE 'batch-other-%') o,
	(SELECT id FROM voice_call_batches WHERE job_id = 'batch-huge') huge,
	(SELECT id FROM voice_call_batches WHERE job_id = 'batch-small') small,
	generate_series(1, 5 * $N + 10) g;
SQL
	my $loaded = time - $t0;
	$t->psql("SET maintenance_work_mem = '256MB';\n" . join '', map { "$_->[1];\n" } @$defs);
	$t->psql(<<'SQL');
UPDATE voice_call_batches b SET total_count = c.total, pending_count = c.pending, claimed_count = c.claimed,
	running_count = c.running, completed_count = c.completed, failed_count = c.failed,
	cancelled_count = c.cancelled
FROM (SELECT batch_id, count(*) AS total, count(*) FILTER (WHERE status = 'pending') AS pending,
		count(*) FILTER (WHERE status = 'claimed') AS claimed, count(*) FILTER (WHERE status = 'running') AS running,
		count(*) FILTER (WHERE status = 'completed') AS completed,
		count(*) FILTER (WHERE status = 'failed') AS failed,
		count(*) FILTER (WHERE status = 'cancelled') AS cancelled
	FROM voice_call_batch_entries GROUP BY batch_id) c
WHERE b.id = c.batch_id;
ANALYZE voice_call_batch_entries;
ANALYZE voice_call_batches;
SQL
	$took = time - $t0;
	is_deeply($t->psql($indexes), $defs, 'the indexes of voice_call_batch_entries are those of the schema');
	%B = map { $_->[0] => { id => $_->[1], total => $_->[2] } }
		@{ $t->psql(q{SELECT job_id, id, total_count FROM voice_call_batches WHERE job_id IN ('batch-huge', 'batch-small')}) };
	is($B{'batch-huge'}{total}, $N, "batch-huge: $N entries");
	is($B{'batch-small'}{total}, 10, 'batch-small: 10 entries');
	is($t->psql_value('SELECT count(*) FROM voice_call_batch_entries'), 5 * $N + 10, 'the table: ' . (5 * $N + 10));
	is($t->psql_value('SELECT count(*) FROM voice_call_batch_entries e LEFT JOIN voice_call_batches b'
		. ' ON b.id = e.batch_id WHERE b.id IS NULL'), 0, '... every entry in a real batch');
	diag(sprintf('loaded %d entries in %.1f s (INSERT ... SELECT generate_series %.1f s, indexes + counters'
		. ' + ANALYZE %.1f s)', 5 * $N + 10, $took, $loaded, $took - $loaded));
}
my ($huge, $small) = map { $B{$_}{id} } qw(batch-huge batch-small);
# the entry before the middle of the big batch, and the one before its last page
my @huge_ids = map { $_->[0] } @{ $t->psql("SELECT id FROM voice_call_batch_entries WHERE batch_id = '$huge'"
	. " ORDER BY id OFFSET " . int($N / 2 - 1) . " LIMIT 1") },
	@{ $t->psql("SELECT id FROM voice_call_batch_entries WHERE batch_id = '$huge' ORDER BY id DESC OFFSET"
	. " $LIMIT - 1 LIMIT 1") };
my ($mid_after, $last_after) = map { $_ - 1 } @huge_ids;    # "after" values: the page starts at these ids

# ---- plans ---------------------------------------------------------------------------------


# An EXPLAIN ANALYZE plan of a page statement: each scan of the entries an
# Index Scan of $index bounded to the batch, reading no more than the page.
sub plan_ok ($plan, $index, $what) {
	my @n = Statements::nodes($plan);
	my @scans = grep { ($_->{'Relation Name'} // '') eq 'voice_call_batch_entries' } @n;
	my $summary = join(' > ', map { $_->{'Node Type'} . ($_->{'Index Name'} ? "[$_->{'Index Name'}]" : '') } @n);
	subtest $what => sub {
		is($plan->{'Node Type'}, 'Limit', 'a Limit on top') or diag($summary);
		ok(@scans >= 1, 'voice_call_batch_entries read') or return;
		ok(!(grep { ($_->{'Index Name'} // '') eq 'voice_call_batch_entries_pkey' } @n), 'no scan of the primary key')
			or diag($summary);
		for my $s (@scans) {
			like($s->{'Node Type'}, qr/^Index (?:Only )?Scan$/, 'an Index Scan') or diag($summary);
			is($s->{'Index Name'}, $index, "of $index") or diag($summary);
			like($s->{'Index Cond'} // '', qr/batch_id/, 'bounded to the batch in the Index Cond')
				or diag('Index Cond: ' . ($s->{'Index Cond'} // 'none'));
			ok(!$s->{'Rows Removed by Filter'}, 'no row read and thrown away')
				or diag("Rows Removed by Filter: $s->{'Rows Removed by Filter'}; Filter: $s->{Filter}");
			ok($s->{'Actual Rows'} <= $LIMIT + 1, "rows read ($s->{'Actual Rows'}) <= the page (" . ($LIMIT + 1) . ')');
		}
		note($summary);
	};
}

my %STMT = Statements::read(($ENV{CALLSTOP_SRCDIR} // "$FindBin::Bin/..") . '/src/common/statements.c', qr/DB_BATCH_ENTRIES\w*/);
is_deeply([ sort keys %STMT ], [qw(DB_BATCH_ENTRIES DB_BATCH_ENTRIES_BY_STATUS)],
	'the two page statements read from src/common/statements.c');

# [statement, what, parameters as status.c binds them: batch, after, limit + 1, (status, second status)]
my @CASES = (
	[ DB_BATCH_ENTRIES => 'big batch, first page',  $huge,  0,           $LIMIT + 1 ],
	[ DB_BATCH_ENTRIES => 'big batch, middle page', $huge,  $mid_after,  $LIMIT + 1 ],
	[ DB_BATCH_ENTRIES => 'big batch, last page',   $huge,  $last_after, $LIMIT + 1 ],
	[ DB_BATCH_ENTRIES => 'small batch',            $small, 0,           $LIMIT + 1 ],
	[ DB_BATCH_ENTRIES_BY_STATUS => 'big batch, pending (+ claimed), first page', $huge, 0, $LIMIT + 1,
		'pending', 'claimed' ],
	[ DB_BATCH_ENTRIES_BY_STATUS => 'big batch, pending (+ claimed), last page', $huge, $last_after, $LIMIT + 1,
		'pending', 'claimed' ],
	[ DB_BATCH_ENTRIES_BY_STATUS => 'big batch, running, middle page', $huge, $mid_after, $LIMIT + 1,
		'running', undef ],
	[ DB_BATCH_ENTRIES_BY_STATUS => 'big batch, cancelled (none)', $huge, 0, $LIMIT + 1, 'cancelled', undef ],
	[ DB_BATCH_ENTRIES_BY_STATUS => 'small batch, pending (+ claimed)', $small, 0, $LIMIT + 1, 'pending', 'claimed' ],
);

# Every case under a custom and a generic plan, with the statistics ANALYZE
# gathered, then with statistics that lie both ways: every batch one entry
# (n_distinct -1), one batch the whole table (n_distinct 1).
my @STATS = ([ 'ANALYZE statistics', undef ], [ 'statistics: each batch 1 entry', -1 ],
	[ 'statistics: one batch of all entries', 1 ]);
SKIP: {
	skip 'the page statements could not be read from src/common/statements.c', 1 unless keys %STMT == 2;
	for my $st (@STATS) {
		my ($stats, $nd) = @$st;
		$t->psql("ALTER TABLE voice_call_batch_entries ALTER batch_id SET (n_distinct = $nd);"
			. ' ANALYZE voice_call_batch_entries;') if defined $nd;
		for my $c (@CASES) {
			my ($id, $what, @p) = @$c;
			my $index = $id eq 'DB_BATCH_ENTRIES' ? 'voice_call_batch_entries_page_idx'
				: 'voice_call_batch_entries_status_idx';
			# untyped parameters, as db.c prepares them (nParams 0: types from the SQL)
			my $args = join(', ', map { defined $_ ? "'$_'" : 'NULL' } @p);
			for my $mode (qw(force_custom_plan force_generic_plan)) {
				my ($res) = Statements::explain($t, $STMT{$id}, $mode,
					"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE p($args)");
				(my $short = $mode) =~ s/^force_|_plan$//g;
				# A status page of a batch the statistics make (nearly)
				# empty: the ordered scan of the status index, the batch
				# index with a filter and a bitmap scan + sort of the few
				# rows expected cost the same to the planner, which may
				# take any of them (PostgreSQL 15 has no way to rule out
				# the other two in one statement).  Reported, not failed.
				local $TODO = 'a status page of a batch the statistics make (nearly) empty'
					if $id eq 'DB_BATCH_ENTRIES_BY_STATUS' && (($nd // 0) == -1 || $p[0] eq $small);
				plan_ok($res->{Plan}, $index, "$id, $what, $short plan, $stats");
				note(sprintf('%s, %s, %s plan, %s: %.2f ms', $id, $what, $short, $stats, $res->{'Execution Time'}));
			}
		}
	}
	$t->psql('ALTER TABLE voice_call_batch_entries ALTER batch_id RESET (n_distinct); ANALYZE voice_call_batch_entries;');
}

# ---- the same pages through nginx: results, then timings -------------------------------------

my $hmac_key = pack('H*', $t->psql_value(q{SELECT encode(value, 'hex') FROM callstop_secrets WHERE name = 'cursor_hmac_key'}));

# A cursor as src/common/cursor.c writes it: the page starts after $after.
sub cursor_for ($batch, $status, $after) {
	return sprintf('%016x', $after)
		. substr(hmac_sha256_hex("entries|$batch|" . ($status // '') . "|$after", $hmac_key), 0, 32);
}

# [what, job id, batch uuid, after, status filter]
my @PAGES = (
	[ 'small batch (10 entries)',                 'batch-small', $small, 0,           undef ],
	[ 'big batch, first page',                    'batch-huge',  $huge,  0,           undef ],
	[ 'big batch, middle page',                   'batch-huge',  $huge,  $mid_after,  undef ],
	[ 'big batch, last page',                     'batch-huge',  $huge,  $last_after, undef ],
	[ 'small batch, status=pending',              'batch-small', $small, 0,           'pending' ],
	[ 'big batch, status=pending, first page',    'batch-huge',  $huge,  0,           'pending' ],
	[ 'big batch, status=pending, last page',     'batch-huge',  $huge,  $last_after, 'pending' ],
	[ 'big batch, status=running, middle page',   'batch-huge',  $huge,  $mid_after,  'running' ],
);

sub page_query ($p, $limit) {
	my (undef, $job, $batch, $after, $status) = @$p;
	my @q = ("limit=$limit");
	push @q, "status=$status" if defined $status;
	push @q, 'cursor=' . cursor_for($batch, $status, $after) if $after;
	return "?" . join('&', @q);
}

sub median (@v) { @v = sort { $a <=> $b } @v; return $v[ $#v / 2 ] }

# Pages of 10 (what the small batch fills) and of 100 (the default), each
# checked against the table, then timed by 20 requests.
my %MS;
for my $limit (10, $LIMIT) {
	for my $p (@PAGES) {
		my ($what, $job, $batch, $after, $status) = @$p;
		my $r = status($job, page_query($p, $limit));
		is($r->{status}, 200, "$what, limit=$limit: 200") or diag($r->{body});
		my $want = $t->psql("SELECT id, status FROM voice_call_batch_entries WHERE batch_id = '$batch' AND id > $after"
			. (defined $status ? ($status eq 'pending' ? q{ AND status IN ('pending', 'claimed')} : " AND status = '$status'") : '')
			. ' ORDER BY id LIMIT ' . ($limit + 1));
		my $more = @$want > $limit;
		splice(@$want, $limit) if $more;
		is_deeply([ map { [ $_->{id}, $_->{status} ] } @{ $r->{json}{entries} // [] } ], $want,
			"$what, limit=$limit: the entries of the page, in id order");
		is(defined $r->{json}{next_cursor}, $more, "$what, limit=$limit: next_cursor " . ($more ? 'set' : 'null'));
		my @ms;
		for (1 .. 20) {
			my $t0 = time;
			my $x = status($job, page_query($p, $limit));
			push @ms, (time - $t0) * 1000;
			$x->{status} == 200 or do { fail("$what: a request failed: $x->{status}"); last };
		}
		$MS{$limit}{$what} = median(@ms);
	}
}
my $load = (split ' ', do { open(my $fh, '<', '/proc/loadavg'); <$fh> // '' })[0] // '?';
diag(sprintf('20 requests each through nginx, median ms (load %s); ratio to the small batch, same limit and filter:', $load));
for my $p (@PAGES) {
	my $small_of = defined $p->[4] ? 'small batch, status=pending' : 'small batch (10 entries)';
	diag(sprintf('  %-40s %s', $p->[0], join('   ', map {
		sprintf('limit=%-3d %7.2f ms %6.2fx', $_, $MS{$_}{ $p->[0] }, $MS{$_}{ $p->[0] } / $MS{$_}{$small_of})
	} 10, $LIMIT)));
}

done_testing();
