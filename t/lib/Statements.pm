package Statements;

# Statements::read($file, qr/DB_NAME.../) - the SQL of the statements of
# src/common/statements.c whose enum name matches: the C string literals of
# their entries and of the macros they use, concatenated as the compiler
# would.  Returns (DB_NAME => sql, ...); a statement that cannot be read is
# left out, so a test counts what it got.  Used by the tests that EXPLAIN
# callstopd's own statements (t/84-list-index.t, t/85-batch-pages.t).

use v5.36;
use JSON::PP ();

sub read ($file, $names) {
	open(my $fh, '<', $file) or return ();
	my $src = do { local $/; <$fh> };
	$src =~ s{/\*.*?\*/}{}gs;
	(my $joined = $src) =~ s/\\\n//g;
	my %macro;
	while ($joined =~ /^#define[ \t]+(\w+)(?:\((\w+)\))?[ \t]+(.*)$/mg) {
		$macro{$1} = { param => $2, body => $3 };
	}
	my $expand;
	$expand = sub ($text, $args) {
		my $s = '';
		while ($text =~ /"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)(?:\(((?:\s*"(?:[^"\\]|\\.)*")*)\s*\))?/g) {
			if (defined $1) {
				($s .= $1) =~ s/\\(.)/$1/g;
			} elsif (exists $args->{$2}) {
				$s .= $args->{$2};
			} elsif (my $m = $macro{$2}) {
				my %a = $m->{param} ? ($m->{param} => $expand->($3 // '', {})) : ();
				$s .= $expand->($m->{body}, \%a);
			} else {
				die "$file: cannot expand $2\n";
			}
		}
		return $s;
	};
	my %stmt;
	# { "name", NCOLS, sql }: the column count (statements.h's enum) is skipped
	while ($joined =~ /\[(DB_\w+)\]\s*=\s*\{\s*"\w+",\s*\w+,\s*(.*?)\s*\},/gs) {
		my ($id, $expr) = ($1, $2);
		next unless $id =~ /^$names$/;
		my $sql = eval { $expand->($expr, {}) };
		$stmt{$id} = $sql if defined $sql && $sql =~ /^SELECT /;
	}
	return %stmt;
}

# Statements::explain($t, $sql, $mode, @queries) - each query (an EXPLAIN
# ... FORMAT JSON of "EXECUTE p(...)") run with $sql prepared as p under
# plan_cache_mode $mode (force_custom_plan, force_generic_plan), in one psql
# session; returns the decoded top object of each ({Plan}, and with ANALYZE
# {"Execution Time"}).
sub explain ($t, $sql, $mode, @queries) {
	my $calls = join "\n", map { my $q = s/'/''/gr; "SELECT pg_temp.plan('$q');" } @queries;
	my $out = $t->psql(<<"SQL");
CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE r jsonb; BEGIN EXECUTE q INTO r; RETURN r::text; END \$f\$;
PREPARE p AS $sql;
SET plan_cache_mode = $mode;
$calls
SQL
	return map { JSON::PP->new->decode($_->[0])->[0] } @$out;
}

# Statements::nodes($plan) - the plan node and every node below it.
sub nodes ($plan) {
	my @all = ($plan);
	push @all, nodes($_) for @{ $plan->{Plans} // [] };
	return @all;
}

1;
