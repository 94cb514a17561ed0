#!/usr/bin/perl
# The harness itself and what nginx answers on its own, without callstopd:
# PostgreSQL up and queryable, the rendered site passes nginx -t, each API
# family's header check answers 401 in that family's body, 413 on a body over
# the cap, 429 past the per-key burst, 502 in the family's body when
# callstopd is down, X-Request-Id on every answer, HTTP/2.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(credential);

# 1 request a minute, burst 1: the third request with one key is limited.
my $t = CallstopTest->new(
	callstopd_off => 1,
	migrate_off   => 1,
	nginx         => { RATE => '1r/m', BURST => 1 },
);

# ---- PostgreSQL ---------------------------------------------------------------

is($t->psql_value('SELECT 1'), '1', 'psql_value');
is_deeply($t->psql(q{SELECT 1, 'a b', NULL UNION ALL SELECT 2, 'c', 'd' ORDER BY 1}),
	[ [ 1, 'a b', '' ], [ 2, 'c', 'd' ] ], 'psql rows and columns');
is_deeply($t->psql('CREATE TABLE h (x int); INSERT INTO h VALUES (7); SELECT x FROM h'),
	[ [7] ], 'psql runs several statements, returns rows only');
ok(!eval { $t->psql('SELECT * FROM no_such_table'); 1 }, 'psql dies on an SQL error');
like($@, qr/no_such_table/, '... with the server message');
like($t->conninfo, qr/dbname=callstop/, 'conninfo names the callstop database');

$t->pg_stop;
ok(!eval { $t->psql('SELECT 1'); 1 }, 'pg_stop: the server is down');
$t->pg_start;
is($t->psql_value('SELECT count(*) FROM h'), '1', 'pg_start: same cluster back');

# ---- the rendered site ----------------------------------------------------------

my ($rc, $out) = $t->nginx_check;
is($rc, 0, 'nginx -t accepts the rendered site') or diag($out);

my $render = "$ENV{CALLSTOP_SRCDIR}/nginx/render";
$render = "$FindBin::Bin/../nginx/render" unless $ENV{CALLSTOP_SRCDIR};
my $tpl = "$FindBin::Bin/../nginx/callstop.conf.in";
my $dest = $t->tmpdir . '/partial.conf';
isnt(system("$render '$tpl' '$dest' LISTEN=127.0.0.1:1 2>/dev/null"), 0,
	'render fails when a placeholder has no value');
ok(!-e $dest, '... and writes nothing');
isnt(system("$render '$tpl' '$dest' 'LISTEN=1;x' SERVER_NAME=a SSL_CERT=a SSL_KEY=a FASTCGI_PASS=a 2>/dev/null"),
	0, 'render refuses a value with a ";"');

# ---- 401 from nginx, per family -----------------------------------------------------

my $UNIFIED_401 = { error => { code => 'unauthorized', message => 'Missing or malformed API key' } };
my $HEPPU_401   = { error => { message => 'Unauthorized', code => 401 } };
my $ADMIN_401   = { ok => JSON::PP::false, error => 'Unauthorized' };
my $TRILLET_401 = { error => 'Unauthorized', message => 'Missing or invalid API key or workspace id' };

sub is_401 ($r, $want, $name) {
	subtest $name => sub {
		is($r->{status}, 401, 'status 401');
		like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON content type');
		my $id = $r->{headers}{'x-request-id'} // '';
		like($id, qr/^[0-9a-f]{32}$/, 'X-Request-Id');
		my $json = $r->{json};
		if (ref $json eq 'HASH' && exists $json->{request_id}) {
			is(delete $json->{request_id}, $id, 'request_id in the body is the header');
		}
		is_deeply($json, $want, 'body') or diag($r->{body});
	};
}

for my $req ([ POST => '/calls/cancel' ], [ GET => '/calls/status/abc' ],
	[ POST => '/batch/batch-cancel/batch-1' ], [ GET => '/no/such/path' ], [ GET => '/' ])
{
	my $r = $t->request(@$req);
	is_401($r, $UNIFIED_401, "unified @$req without headers");
}
is_401($t->request(DELETE => '/api/v1/calls/c1'), $HEPPU_401, 'Heppu-style without x-api-key');
is_401($t->request(GET => '/api/v1/calls?page=1'), $HEPPU_401, 'Heppu-style list without x-api-key');
is_401($t->request(POST => '/api/v1/admin/cancel/call_abc'), $ADMIN_401, 'admin without X-Admin-Token');
is_401($t->request(DELETE => '/v1/api/batch-calls/batch-1'), $TRILLET_401, 'Trillet-style without headers');
is_401($t->request(DELETE => '/v1/batch-calls/batch-1'), $TRILLET_401, 'Trillet-style older path');

# Present but not well-formed, or missing the second header.
my $key = credential('csk_');
my $admin = credential('csa_');
is_401($t->api(POST => '/calls/cancel', key => 'csk_short', frontend => 'f'), $UNIFIED_401,
	'unified: short key');
is_401($t->api(POST => '/calls/cancel', key => "$key!", frontend => 'f'), $UNIFIED_401,
	'unified: key with a foreign character');
is_401($t->api(POST => '/calls/cancel', key => $admin, frontend => 'f'), $UNIFIED_401,
	'unified: an admin token is not an API key');
is_401($t->api(POST => '/calls/cancel', key => $key), $UNIFIED_401, 'unified: no X-Frontend-ID');
is_401($t->request(DELETE => '/api/v1/calls/c1', headers => { 'x-api-key' => 'CSK_' . substr($key, 4) }),
	$HEPPU_401, 'Heppu-style: the csk_ prefix is case-sensitive');
is_401($t->request(POST => '/api/v1/admin/cancel/c1', headers => { 'X-Admin-Token' => $key }),
	$ADMIN_401, 'admin: an API key is not an admin token');
is_401($t->request(DELETE => '/v1/api/batch-calls/b', headers => { 'x-api-key' => $key }),
	$TRILLET_401, 'Trillet-style: no x-workspace-id');
is_401($t->request(DELETE => '/v1/api/batch-calls/b', headers => { 'x-workspace-id' => 'ws' }),
	$TRILLET_401, 'Trillet-style: no x-api-key');
is_401($t->request(GET => '/api/v1/../../calls/status/x', headers => { 'x-api-key' => $key }),
	$UNIFIED_401, 'a dot-segment path is checked as the family it resolves to');

# ---- 413 ----------------------------------------------------------------------------

my $r = $t->api(POST => '/calls/cancel', key => credential('csk_'), frontend => 'f',
	body => '{"resource_id":"' . ('x' x (65 * 1024)) . '"}', content_type => 'application/json');
is($r->{status}, 413, '65 KiB body: 413 from nginx');
is($r->{json}{error}{code}, 'payload_too_large', '... unified body') or diag($r->{body});
is($r->{json}{request_id}, $r->{headers}{'x-request-id'}, '... with the request id');

# ---- callstopd down: 502 in the family's shape ----------------------------------------

$r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'f', json => { resource_id => 'x' });
is($r->{status}, 502, 'callstopd down: 502');
is($r->{json}{error}{code}, 'bad_gateway', '... unified body') or diag($r->{body});
like($r->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, '... X-Request-Id');
is($r->{json}{request_id}, $r->{headers}{'x-request-id'}, '... the same id in the body');

$r = $t->request(DELETE => '/api/v1/calls/c1', headers => { 'x-api-key' => credential('csk_') });
is_deeply([ $r->{status}, $r->{json} ], [ 502, { error => { message => 'Bad gateway', code => 502 } } ],
	'Heppu-style 502 body');
$r = $t->request(POST => '/api/v1/admin/cancel/c1', headers => { 'X-Admin-Token' => $admin });
is_deeply([ $r->{status}, $r->{json} ], [ 502, { ok => JSON::PP::false, error => 'Bad gateway' } ],
	'admin 502 body');
$r = $t->request(DELETE => '/v1/batch-calls/b',
	headers => { 'x-api-key' => credential('csk_'), 'x-workspace-id' => 'ws' });
is($r->{status}, 502, 'Trillet-style 502');
is($r->{json}{error}, 'Bad Gateway', '... body') or diag($r->{body});

# ---- 429 per key, in the family's shape ---------------------------------------------

sub third ($send) {
	my @r = map { $send->() } 1 .. 3;
	return ([ map { $_->{status} } @r ], $r[2]);
}

my ($codes, $last) = third(sub { $t->api(GET => '/calls/status/x', key => $key, frontend => 'f') });
is_deeply($codes, [ 502, 429, 429 ], 'unified: a key used once before gets one more (burst 1), then 429')
	or diag("@$codes");
is($last->{headers}{'retry-after'}, '1', '429: Retry-After: 1');
is($last->{json}{error}{code}, 'rate_limited', '429: unified body') or diag($last->{body});
is($last->{json}{request_id}, $last->{headers}{'x-request-id'}, '429: request id in body and header');

my $other = credential('csk_');
($codes) = third(sub { $t->api(GET => '/calls/status/x', key => $other, frontend => 'f') });
is_deeply($codes, [ 502, 502, 429 ], 'the limit is per key: another key has its own burst');

my $hk = credential('csk_');
($codes, $last) = third(sub { $t->request(GET => '/api/v1/calls/c1', headers => { 'x-api-key' => $hk }) });
is_deeply([ @$codes, $last->{json} ], [ 502, 502, 429, { error => { message => 'Too many requests', code => 429 } } ],
	'Heppu-style 429 body');

my $at = credential('csa_');
($codes, $last) = third(sub { $t->request(POST => '/api/v1/admin/cancel/c1', headers => { 'X-Admin-Token' => $at }) });
is_deeply([ @$codes, $last->{json} ], [ 502, 502, 429, { ok => JSON::PP::false, error => 'Too many requests' } ],
	'admin 429 body');

my $tk = credential('csk_');
($codes, $last) = third(sub {
	$t->request(GET => '/v1/api/batch-calls/b', headers => { 'x-api-key' => $tk, 'x-workspace-id' => 'w' })
});
is_deeply($codes, [ 502, 502, 429 ], 'Trillet-style limited');
is($last->{json}{error}, 'Too Many Requests', 'Trillet-style 429 body') or diag($last->{body});
is($last->{headers}{'retry-after'}, '1', '... Retry-After');

# ---- HTTP/2 ---------------------------------------------------------------------------

SKIP: {
	my ($curl) = grep { -x } map { "$_/curl" } split /:/, $ENV{PATH} // '';
	skip 'curl not installed', 1 unless $curl;
	open(my $fh, '-|', $curl, '-s', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
		'--cacert', $t->tmpdir . '/nginx/cert.pem', $t->url('/calls/cancel')) or die "curl: $!";
	my $v = do { local $/; <$fh> };
	close $fh;
	is($v, '2 401', 'HTTP/2 over TLS; the generated certificate verifies');
}

# ---- process bookkeeping ------------------------------------------------------------

is($t->callstopd_pid, undef, 'callstopd_off: no callstopd');
is_deeply([ $t->worker_pids ], [], '... and no workers');
ok($t->nginx_pid && kill(0, $t->nginx_pid), 'nginx runs');
like($t->nginx_log, qr/limiting requests/, 'nginx_log: the rate limit was logged');

my @pids = ($t->nginx_pid);
my $postmaster = (split /\n/, CallstopTest::_slurp($t->tmpdir . '/pg/postmaster.pid'))[0];
my $dir = $t->tmpdir;
{
	local $ENV{CALLSTOP_TEST_KEEP} = 0;
	$t->stop;
}
ok(CallstopTest::_gone($_), "stop: pid $_ gone") for @pids, $postmaster;
ok(!-d $dir, 'stop: temporary directory removed');

done_testing();
