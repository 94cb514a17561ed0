#!/usr/bin/perl
# Safe upgrades (issue 16): callstopd checks the schema version on every
# (re)connection.  With a migration pending it logs one line for the whole
# daemon ("database schema is at N, this callstopd needs M: run `callstopctl
# migrate`"), answers 503 to the API and to GET /callstop-ready instead of
# failing query by query, and `callstopctl check` says the same words; once
# `callstopctl migrate` has run, the same callstopd (no restart) is ready.
# The version it needs is the newest migration of sql/ (generated at build
# time by build-aux/schema-version).

use v5.36;
use Test::More;
use File::Copy qw(copy);
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);

my $sqldir = "$FindBin::Bin/../sql";
my @files = sort { ($a =~ m{/(\d+)_})[0] <=> ($b =~ m{/(\d+)_})[0] } glob("$sqldir/*.sql");
my ($needed) = $files[-1] =~ m{/0*(\d+)_};
my ($at) = $files[-2] =~ m{/0*(\d+)_};

my $t = CallstopTest->new(workers => 2, migrate_off => 1, callstopd_off => 1);

# the package's migrations but the newest: an upgrade whose migrate is pending
my $older = $t->tmpdir . '/sql-older';
mkdir $older or die "$older: $!";
copy($_, $older) or die "copy $_: $!" for @files[ 0 .. $#files - 1 ];
my ($rc, $out, $err) = $t->ctl('migrate', '--dir', $older);
is($rc, 0, "schema migrated up to $at") or diag($err);

my $line = "database schema is at $at, this callstopd needs $needed: run `callstopctl migrate`";
($rc, $out, $err) = $t->ctl('check', '--dir', $sqldir);
is($rc, 1, 'callstopctl check: exit 1 with a migration pending');
like($err, qr/^callstopctl: check: \Q$line\E/m, '... in the words callstopd logs') or diag($err);

my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $call = fx_call($t, $tid, status => 'running');
my $pid = $t->start_callstopd;

my $r = $t->wait_until(sub { my $r = $t->request(GET => '/callstop-ready'); $r->{status} == 503 && $r });
is($r->{status}, 503, 'GET /callstop-ready: 503 with a migration pending') or diag($r->{body});
is_deeply($r->{json}, { ready => JSON::PP::false, database => 'up', schema_version => $at + 0,
	schema_needed => $needed + 0 }, '... the body says why');
is($r->{headers}{'retry-after'}, '1', '... Retry-After');

$r = $t->api(POST => '/calls/cancel', json => { resource_id => $call }, key => $key, frontend => 'fe1');
is($r->{status}, 503, 'a cancel: 503') or diag($r->{body});
is($r->{json}{error}{code}, 'database_unavailable', '... database_unavailable, nothing changed');
is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'running', '... the call still runs');
$r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
is($r->{status}, 503, 'a status: 503');

my $m = $t->metrics;
is($m->{callstop_up}, 1, 'callstop_up 1');
is($m->{callstop_database_up}, 1, 'callstop_database_up 1: the database answers');
is($m->{callstop_schema_current}, 0, 'callstop_schema_current 0');
is($m->{callstop_schema_version}, $at, "callstop_schema_version $at");

# every worker and the retry child saw it; the daemon said it once
my @said = $t->log =~ /\Q$line\E/g;
is(scalar @said, 1, 'the log says it once') or diag($t->log);
unlike($t->log, qr/cannot prepare statement/, 'no statement failed one by one');

($rc, $out, $err) = $t->ctl('migrate', '--dir', $sqldir);
is($rc, 0, 'callstopctl migrate') or diag($err);
like($out, qr/^applied 0*$needed\_/m, "... applies $needed");

$r = $t->wait_until(sub { my $r = $t->request(GET => '/callstop-ready'); $r->{status} == 200 && $r },
	timeout => 10);
is($r->{status}, 200, 'GET /callstop-ready: 200 after the migration, without a restart') or diag($r->{body});
is($r->{json}{schema_version}, $needed, '... schema_version');
is($t->callstopd_pid, $pid, '... the same callstopd');
# each worker finds out at its next connection attempt (DB_RETRY_MS)
$r = $t->wait_until(sub {
	my $r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
	$r->{status} == 200 && $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1')->{status} == 200
		&& $r;
}, timeout => 10);
is($r->{status}, 200, 'the API answers again') or diag($r->{body});
# (a worker that has not found out yet answers 503 and changes nothing)
$r = $t->wait_until(sub {
	my $r = $t->api(POST => '/calls/cancel', json => { resource_id => $call }, key => $key, frontend => 'fe1');
	$r->{status} != 503 && $r;
}, timeout => scaled(10)) || { status => 503 };
is($r->{status}, 200, 'a cancel: 200');
like($t->log, qr/database schema is at $needed, as this callstopd needs: serving again/, 'the log says so');
# a scrape is answered by any worker, and each finds out at its next
# connection attempt: wait for one that has
$t->wait_until(sub { $m = $t->metrics; ($m->{callstop_schema_current} // 0) == 1 }, timeout => scaled(10));
is($m->{callstop_schema_current}, 1, 'callstop_schema_current 1');
like(join(' ', grep { /^callstop_build_info\{/ } keys %$m), qr/version="[^"]+"/, 'callstop_build_info{version}');

($rc, $out, $err) = $t->ctl('check', '--dir', $sqldir);
is($rc, 0, 'callstopctl check: ok') or diag($err);

# the database down: not ready, database_up 0
$t->pg_stop;
$r = $t->wait_until(sub { my $r = $t->request(GET => '/callstop-ready'); $r->{status} == 503 && $r });
is($r->{status}, 503, 'database down: /callstop-ready 503');
is($r->{json}{database}, 'down', '... database down');
is($t->metrics->{callstop_database_up}, 0, '... callstop_database_up 0');
$t->pg_start;

done_testing;
