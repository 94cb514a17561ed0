#!/usr/bin/perl
# Every schema that a release installed migrates to one schema.  callstopctl
# migrate records migrations by version number, and two releases shipped
# different files under the same numbers (sql/017_reconcile.sql says how):
# a database migrated by any of them, then by this tree's sql/, must have
# exactly the functions, triggers, columns, indexes, constraints and views of
# a database migrated by this tree alone (function bodies compared without
# their comments), and the schema version of this tree.
#
# The releases' files come from the repository's history (git).  A full
# clone must test every release; a tarball or a shallow clone skips the
# releases it lacks.

use v5.36;
use Test::More;
use FindBin;
use File::Path qw(make_path);
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $srcdir = "$FindBin::Bin/..";
my $sqldir = "$srcdir/sql";
my ($newest) = (sort { $a <=> $b } map { m{/0*(\d+)_[^/]*\.sql$} ? $1 : () } glob("$sqldir/*.sql"))[-1];

# The commit each release of the migrations landed as (issues stops).
my @releases = (
	[ 'stop 18' => 'c3841971fb6f' ],
	[ 'stop 19' => '5eb8ee03dd3a' ],
	[ 'stop 20' => '4fdf8fab4003' ],
);

my $t = CallstopTest->new(migrate_off => 1, callstopd_off => 1, nginx_off => 1);

# Bodies without "--" comments and with whitespace collapsed: releases
# differ in comments only, where they differ in a function at all.
my $fingerprint = <<'SQL';
SELECT 'function ' || p.oid::regprocedure || ' ' ||
       md5(regexp_replace(regexp_replace(pg_get_functiondef(p.oid), '--[^\n]*', '', 'g'), '\s+', ' ', 'g'))
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'column ' || attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod) ||
       CASE WHEN attnotnull THEN ' not null' ELSE '' END || ' ' || attgenerated::text || ' ' ||
       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'c') AND a.attnum > 0
  AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid))
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
ORDER BY 1
SQL

sub schema_of ($db) { return [ map { $_->[0] } @{ $t->psql($fingerprint, db => $db) } ] }

sub migrate ($db, $dir) {
	my ($rc, $out, $err) = $t->ctl_in($db, 'migrate', '--dir', $dir);
	is($rc, 0, "$db: callstopctl migrate --dir $dir") or diag("$err$out");
	return;
}

# what differs between two sorted lists, for the diagnostics
sub differences ($want, $got) {
	my (%w, %g);
	@w{@$want} = ();
	@g{@$got} = ();
	return join("\n", (map {"missing: $_"} grep { !exists $g{$_} } @$want),
		(map {"extra:   $_"} grep { !exists $w{$_} } @$got));
}

$t->create_database('fresh');
migrate('fresh', $sqldir);
my $want = schema_of('fresh');
cmp_ok(scalar @$want, '>', 100, 'a fresh database: its schema fingerprinted (' . scalar(@$want) . ' objects)');

my $n = 0;
for my $release (@releases) {
	my ($name, $commit) = @$release;
	(my $db = "release_$name") =~ s/\W/_/g;
	subtest "$name ($commit), then this tree" => sub {
		my @files = grep {m{^sql/\d+_[^/]*\.sql$}}
			split /\n/, qx{git -C '$srcdir' ls-tree --name-only '$commit' sql/ 2>/dev/null};
		plan skip_all => "$commit is not in this clone's history" if $? != 0 || !@files;
		my $dir = $t->tmpdir . "/$db";
		make_path($dir);
		for my $f (@files) {
			my $text = qx{git -C '$srcdir' show '$commit:$f'};
			die "git show $commit:$f failed\n" if $? != 0;
			open(my $fh, '>', "$dir/" . ($f =~ s{^sql/}{}r)) or die "$dir: $!";
			print {$fh} $text;
			close $fh or die "$dir: $!";
		}
		$t->create_database($db);
		migrate($db, $dir);
		my ($at) = (sort { $a <=> $b } map { m{/0*(\d+)_} ? $1 : () } @files)[-1];
		is($t->psql("SELECT max(version) FROM schema_migrations", db => $db)->[0][0], $at,
			"at $name\'s version $at");
		migrate($db, $sqldir);
		is($t->psql("SELECT max(version) FROM schema_migrations", db => $db)->[0][0], $newest,
			"then at this tree's version $newest");
		my $got = schema_of($db);
		ok(@$got == @$want && !differences($want, $got), "the schema of a fresh database")
			or diag(differences($want, $got));
		$n++;
	};
}
my $full = qx{git -C '$srcdir' rev-parse --is-shallow-repository 2>/dev/null} eq "false\n";
if ($full) {
	is($n, scalar @releases, 'a full clone: every release tested');
} else {
	note("not a full git clone: $n of " . scalar(@releases) . ' releases tested');
}

done_testing;
