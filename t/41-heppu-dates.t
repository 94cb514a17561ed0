#!/usr/bin/perl
# Issue 10, defect 12: Heppu's startDate/endDate (SPEC 4.1) read strictly as
# RFC 3339 (or a bare date), through nginx.  Dates that passed the old sscanf
# check but not PostgreSQL answered 500; "T-1:00:00Z" was read as an hour
# before midnight.  Each is now 400 in Heppu's shape, and changes nothing.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(fx_snapshot);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme', workspace_id => 'ws_acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

# One call the evening before 2026-01-01 (UTC), one on the day itself.
my $eve = $t->psql_value(q{INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, created_at)
	VALUES (} . $tid . q{, 'ag', '+15550000001', 'running', '2025-12-31T23:30:00Z') RETURNING id});
my $day = $t->psql_value(q{INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, created_at)
	VALUES (} . $tid . q{, 'ag', '+15550000002', 'running', '2026-01-01T12:00:00Z') RETURNING id});

sub list ($query) { return $t->request(GET => "/api/v1/calls?$query", headers => { 'x-api-key' => $key }) }

sub ids ($r) { return [ sort map { $_->{id} } @{ $r->{json}{data}{calls} // [] } ] }

sub is_heppu_400 ($r, $name) {
	subtest $name => sub {
		is($r->{status}, 400, 'status 400') or diag($r->{body});
		my $j = $r->{json};
		ok(ref $j eq 'HASH' && ref $j->{error} eq 'HASH', 'body {"error": {...}}') or return;
		is($j->{error}{code}, 400, 'error.code 400');
		like($j->{error}{message} // '', qr/(?:start|end)Date must be an RFC 3339/, 'error.message names the field');
	};
}

my $before = fx_snapshot($t);

# Each of these passed the C check: PostgreSQL refused the first three (500).
for my $q ('startDate=2026-%2B1-01', 'endDate=2026-01-01T00:00:00%2B16:00', 'startDate=2026-01-01T00:00:00-16:00',
	'startDate=2026-01-01T-1:-1:-1Z', 'startDate=2026-01-01T-1:00:00Z', 'endDate=2026-01-01T00:-1:00Z',
	'startDate=2026-01-01T%201:00:00Z', 'startDate=2026-%201-01', 'startDate=2026-01-01T00:00:00%2B1:00',
	'endDate=2026-01-01T00:00:00.Z', 'startDate=%2B026-01-01', 'startDate=2026-01-01T00:00:00%2B01:-1')
{
	is_heppu_400(list($q), "?$q");
}

# The bounds that stay: PostgreSQL's +-15:59, fractions, lower-case t and z.
my $r = list('startDate=2026-01-01T00:00:00%2B15:59&endDate=2026-01-02');
is($r->{status}, 200, '+15:59 is accepted') or diag($r->{body});
is_deeply(ids($r), [ sort $eve, $day ], '... 2025-12-31T08:01Z onwards: both calls');
$r = list('startDate=2026-01-01t00:00:00.000z');
is($r->{status}, 200, 'lower-case t and z, a fraction') or diag($r->{body});
is_deeply(ids($r), [$day], '... only the call of 2026-01-01');
$r = list('startDate=2026-01-01');
is_deeply(ids($r), [$day], 'a bare date is 00:00 UTC');

is_deeply(fx_snapshot($t), $before, 'nothing changed in the database');
is($t->psql_value("SELECT count(*) FROM voice_call_logs WHERE status = 'running'"), 2, 'both calls still run');
unlike($t->log, qr/\b(?:22007|22008|22009)\b|internal_error/, 'no date reached PostgreSQL to be refused there');

done_testing();
