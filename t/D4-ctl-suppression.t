#!/usr/bin/perl
# callstopctl suppression add|remove|list|import (SPEC 12): the same
# cancel as POST /suppressions; usage errors change nothing; an import of
# 100 000 numbers runs in one transaction, with progress on stderr.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Time::HiRes qw(time);

my $t = CallstopTest->new(nginx_off => 1, callstopd_off => 1);
my $tid = $t->tenant('acme');
my $other = $t->tenant('beta');
my $b = fx_batch($t, $tid, 'batch-c1', 5);
my $bb = fx_batch($t, $other, 'batch-c1', 5);

sub listed ($tenant) { return $t->psql_value("SELECT count(*) FROM suppressions WHERE tenant_id = $tenant") + 0 }

subtest 'add, list, remove' => sub {
	my ($rc, $out, $err) = $t->ctl(qw(suppression add --tenant acme --reason), 'asked', '+15550000002', '+15550000003');
	is($rc, 0, 'add: exit 0') or diag($err);
	is($out, "added 2, already suppressed 0, pending entries cancelled 2\n", 'add: totals');
	is($t->psql_value("SELECT count(*) FROM voice_call_batch_entries WHERE batch_id = '$b' AND status = 'cancelled'"), 2,
		'their entries cancelled');
	is($t->psql_value("SELECT count(*) FROM voice_call_batch_entries WHERE batch_id = '$bb' AND status = 'cancelled'"), 0,
		"the other tenant's untouched");
	fx_counters_ok($t, $b, 'counters equal the entry counts');
	($rc, $out) = $t->ctl(qw(suppression add --tenant acme +15550000002));
	is($out, "added 0, already suppressed 1, pending entries cancelled 0\n", 'again: already suppressed');
	($rc, $out) = $t->ctl(qw(suppression list --tenant acme));
	is($rc, 0, 'list: exit 0');
	like($out, qr/^number\s+reason\s+created_at\n\+15550000002\s+asked\s+\S+Z\n\+15550000003\s+asked\s+\S+Z\n$/, 'list: a table');
	($rc, $out, $err) = $t->ctl(qw(suppression remove --tenant acme +15550000003));
	is($rc, 0, 'remove: exit 0');
	is(listed($tid), 1, 'one left');
	($rc, $out, $err) = $t->ctl(qw(suppression remove --tenant acme +15550000003));
	is($rc, 1, 'remove again: exit 1');
	like($err, qr/not on the list/, 'says so');
	is($t->psql_value("SELECT count(*) FROM voice_call_batch_entries WHERE batch_id = '$b' AND status = 'cancelled'"), 2,
		'removal does not resurrect');
};

subtest 'usage errors change nothing' => sub {
	my $n = listed($tid);
	my $file = $t->tmpdir . '/bad.txt';
	open(my $fh, '>', $file) or die;
	print {$fh} "+15551000001\n# a comment\n\n+15551000002\nnot-a-number\n";
	close $fh;
	for my $c ([ [qw(suppression add --tenant acme 15550000009)], 2, qr/not an E\.164 number/ ],
		[ [qw(suppression add +15550000009)], 2, qr/--tenant NAME is required/ ],
		[ [qw(suppression add --tenant acme)], 2, qr/expected NUMBER/ ],
		[ [qw(suppression list --tenant acme --reason x)], 2, qr/unknown option/ ],
		[ [qw(suppression import --tenant acme), $file], 2, qr/bad\.txt:5: 'not-a-number' is not an E\.164 number/ ],
		[ [qw(suppression import --tenant acme /nonexistent)], 2, qr/cannot open/ ],
		[ [qw(suppression add --tenant nobody +15550000009)], 1, qr/no tenant/ ],
		[ [qw(suppression frob)], 2, qr/add, remove, list or import/ ]) {
		my ($rc, $out, $err) = $t->ctl(@{ $c->[0] });
		is($rc, $c->[1], "@{ $c->[0] }: exit $c->[1]");
		like($err, $c->[2], 'message') or diag($err);
	}
	is(listed($tid), $n, 'the list did not change');
};

subtest 'import of 100 000 numbers: one transaction, progress' => sub {
	my $file = $t->tmpdir . '/dnc.txt';
	open(my $fh, '>', $file) or die;
	printf {$fh} "+1666%07d\n", $_ for 1 .. 100_000;
	print {$fh} "+15550000002\n";
	close $fh;
	my $n0 = listed($tid);
	my $t0 = time;
	my ($rc, $out, $err) = $t->ctl(qw(suppression import --tenant acme --reason import), $file);
	my $s = time - $t0;
	is($rc, 0, 'exit 0') or diag($err);
	is($out, "added 100000, already suppressed 1, pending entries cancelled 0\n", 'totals');
	like($err, qr{100001/100001 numbers}, 'progress on stderr');
	is(scalar(() = $err =~ /numbers\n/g), 11, 'every 10 000 numbers, and at the end');
	is(listed($tid), $n0 + 100_000, 'all on the list');
	is($t->psql_value("SELECT count(DISTINCT xmin::text) FROM suppressions WHERE tenant_id = $tid AND reason = 'import'"), 1,
		'written by one transaction');
	diag(sprintf 'import of 100 001 numbers: %.1f s', $s);
};

done_testing();
