#!/usr/bin/perl
# The curl lines of README.md's "Campaign control" section, run as written
# (after "source .demo/credentials.env": the same variables) against a
# batch and a running call of agent-demo-1: each answers 200 with the shape
# of SPEC 10 / 12, and the bootstrap demo tour's three lines too.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use JSON::PP ();

my $t = CallstopTest->new(workers => 1);
my $curl = (grep { -x } map { "$_/curl" } split /:/, $ENV{PATH})[0];
plan skip_all => 'no curl' unless $curl;
my $tid = $t->tenant('demo');
my $key = $t->key(tenant => 'demo', frontend_id => 'demo-frontend');
my $b = fx_batch($t, $tid, 'batch-demo-small', 20);
my ($e) = fx_claim($t, $b, 'demo-dialer', 2);
fx_start($t, $e, 'demo-dialer', agent => 'agent-demo-1');

my %env = (CALLSTOP_CA => $t->tmpdir . '/nginx/cert.pem', CALLSTOP_URL => $t->base_url,
	CALLSTOP_FRONTEND_ID => 'demo-frontend', CALLSTOP_API_KEY => $key);

sub commands ($text) {
	(my $joined = $text) =~ s/\\\n\s*/ /g;
	return map { s/<batch-job-id>/batch-demo-small/gr } grep { /^curl / } split /\n/, $joined;
}

sub run ($cmd) {
	local @ENV{ keys %env } = values %env;
	my $out = `$cmd -w '\\n%{http_code}' 2>&1`;
	my ($body, $code) = $out =~ /^(.*)\n(\d{3})$/s;
	return ($code // 0, eval { JSON::PP->new->decode($body // '') });
}

open(my $fh, '<', "$t->{srcdir}/README.md") or die "README.md: $!";
my $readme = do { local $/; <$fh> };
my ($section) = $readme =~ /^## Campaign control\n(.*?)^## /ms;
my @readme = commands($section // '');
is(scalar @readme, 8, 'eight curl lines in README.md');
my @want = (
	[ status => 'paused' ], [ status => 'processing' ], [ dry_run => JSON::PP::true ], [ dry_run => JSON::PP::false ],
	[ added => 1 ], [ next_cursor => undef ], [ number => '+15550000007' ], [ removed => JSON::PP::true ],
);
for my $i (0 .. $#readme) {
	my ($code, $json) = run($readme[$i]);
	is($code, 200, "README line " . ($i + 1) . ': 200') or diag($readme[$i]);
	my ($k, $v) = @{ $want[$i] // [] };
	is_deeply($json->{$k}, $v, "  $k") if defined $k;
}

open($fh, '<', "$t->{srcdir}/bootstrap") or die "bootstrap: $!";
my $boot = do { local $/; <$fh> };
my $base = $boot =~ /^CURL_BASE='([^']*)'/m ? $1 : '';
my @tour;
while ($boot =~ /show_curl "(?:pause|resume|dry run)[^"]*" \\\n\s*"(\$CURL_BASE [^\n]*)"\n/g) {
	(my $c = $1) =~ s/\$CURL_BASE/$base/;
	$c =~ s/\\(["\$])/$1/g;    # as the shell reads the double-quoted string
	$c =~ s/\$job/batch-demo-small/g;
	push @tour, $c;
}
is(scalar @tour, 3, "the demo tour's pause, resume and dry run");
for my $c (@tour) {
	my ($code) = run($c);
	is($code, 200, 'tour line: 200') or diag($c);
}

done_testing();
