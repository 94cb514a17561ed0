#!/usr/bin/perl
# The internal pages (SPEC 7): GET /callstop-status (php-fpm-like, JSON) and
# GET /callstop-metrics (Prometheus text) answer from 127.0.0.1 only, without
# an API key; callstopd itself answers 404 to a request nginx did not mark
# CALLSTOP_INTERNAL; and their counters move as requests are served.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

sub api (@args) { return $t->api(@args, key => $key, frontend => 'fe1') }

# ---- status -----------------------------------------------------------------------

my $r = $t->request(GET => '/callstop-status');
is($r->{status}, 200, 'status page from 127.0.0.1, no API key: 200') or diag($r->{body});
like($r->{headers}{'content-type'}, qr{^application/json}, '... JSON');
like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, '... X-Request-Id');
my $st = $r->{json};
is($st->{pool}, 'callstopd', 'pool');
is($st->{process_manager}, 'static', 'process_manager');
is($st->{total_processes}, 2, 'total_processes = workers');
is($st->{active_processes} + $st->{idle_processes}, 2, 'active + idle = total');
cmp_ok($st->{active_processes}, '>=', 1, 'active_processes counts the worker serving this page');
cmp_ok($st->{max_active_processes}, '>=', 1, 'max_active_processes');
is($st->{listen_queue}, 0, 'listen_queue 0 when idle');
is($st->{listen_queue_len}, 511, 'listen_queue_len is the backlog (listen_backlog)');
for my $k (qw(accepted_conn slow_requests respawns start_time start_since max_listen_queue)) {
	like($st->{$k} // '', qr/^\d+$/, "$k is a number");
}
my @procs = @{ $st->{processes} };
is(scalar @procs, 3, 'processes: two workers and the retry child');
is_deeply([ sort { $a <=> $b } map { $_->{pid} } @procs ], [ $t->worker_pids ], '... their pids are the children');
is(scalar(grep { $_->{kind} eq 'retry' } @procs), 1, '... one is the retry child');
my ($me) = grep { $_->{state} eq 'busy' } @procs;
ok($me, 'the worker serving the page is busy');
is($me->{request_uri}, '/callstop-status', '... with its URI') if $me;
is($me->{request_method}, 'GET', '... and method') if $me;
is($me->{request_id}, $r->{headers}{'x-request-id'}, '... and request id') if $me;

# ---- metrics ------------------------------------------------------------------------

$r = $t->request(GET => '/callstop-metrics');
is($r->{status}, 200, 'metrics page: 200');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, '... Prometheus text format');
like($r->{body}, qr/^# TYPE callstop_requests_total counter$/m, '... TYPE lines');
like($r->{body}, qr/^callstop_outbox_depth_up 1$/m, '... outbox depth read from the database');

my $m0 = $t->metrics;
my $st0 = $t->status_json;
my $call = fx_call($t, $tid, status => 'running');
my $gone = fx_uuid();
is(api(GET => "/calls/status/$gone")->{status}, 404, 'status of an unknown call') for 1 .. 3;
is(api(POST => '/calls/cancel', json => { resource_id => $call })->{status}, 200, 'cancel a running call');
is(api(POST => '/calls/cancel', json => { resource_id => [ $gone, 'batch-nope' ] })->{status}, 200,
	'cancel unknown ids');
my $m1 = $t->metrics;
my $st1 = $t->status_json;

sub delta ($name) { return ($m1->{$name} // 0) - ($m0->{$name} // 0) }

is(delta('callstop_requests_total{route="calls.status",code="404"}'), 3, 'requests by route and code: 404s');
is(delta('callstop_requests_total{route="calls.cancel",code="200"}'), 2, 'requests by route and code: 200s');
is(delta('callstop_request_duration_seconds_count{route="calls.cancel"}'), 2, 'latency histogram count');
is($m1->{'callstop_request_duration_seconds_bucket{route="calls.cancel",le="+Inf"}'},
	$m1->{'callstop_request_duration_seconds_count{route="calls.cancel"}'}, '+Inf bucket = count');
my @buckets = map { $m1->{$_} } sort { ($a =~ /le="([^"]+)"/)[0] <=> ($b =~ /le="([^"]+)"/)[0] }
	grep { /^callstop_request_duration_seconds_bucket\{route="calls.cancel",le="[0-9.]+"\}$/ } keys %$m1;
is(scalar @buckets, 12, 'twelve finite buckets');
ok(!grep({ $buckets[$_] < $buckets[ $_ - 1 ] } 1 .. $#buckets), 'buckets are cumulative');
is(delta('callstop_cancels_total{resource_type="call",outcome="cancelled"}'), 1, 'cancels: call cancelled');
is(delta('callstop_cancels_total{resource_type="call",outcome="not_found"}'), 1, 'cancels: call not found');
is(delta('callstop_cancels_total{resource_type="batch",outcome="not_found"}'), 1, 'cancels: batch not found');
ok(exists $m1->{'callstop_outbox_terminations_total{provider="livekit",result="done"}'},
	'outbox terminations by provider and result');
cmp_ok($m1->{callstop_db_connections_total}, '>=', 2, 'database connections of the workers');
is(delta('callstop_requests_total{route="internal.metrics",code="200"}'), 1, 'the metrics page counts itself');
cmp_ok($st1->{accepted_conn} - $st0->{accepted_conn}, '>=', 7, 'accepted_conn moved');

# ---- slow requests and respawns ---------------------------------------------------------

$t->write_conf(conf => { slow_request_ms => 1 });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->status_json->{generation} == 1 }, timeout => 10), 'reload with slow_request_ms = 1');
$t->wait_until(sub { scalar(() = $t->worker_pids) == 3 }, timeout => 10);
# a cancel of a batch of 3000 entries takes more than a millisecond
fx_batch($t, $tid, 'batch-big', 3000);
my $slow0 = $t->status_json->{slow_requests};
is(api(POST => '/calls/cancel', json => { resource_id => 'batch-big' })->{status}, 200, 'cancel a big batch');
cmp_ok($t->status_json->{slow_requests} - $slow0, '>=', 1, 'slow_requests counts requests over slow_request_ms');
like($t->log, qr/slow request: req=\S+ route=calls\.cancel took \d+ ms \(slow_request_ms 1\)/, '... and logs them');

my $respawns0 = $t->status_json->{respawns};
my ($victim) = map { $_->{pid} } grep { $_->{kind} eq 'worker' && $_->{state} eq 'idle' } @{ $t->status_json->{processes} };
kill 'KILL', $victim;
ok($t->wait_until(sub { my $s = $t->status_json; $s->{respawns} == $respawns0 + 1 && $s->{total_processes} == 2 },
	timeout => 10), 'respawns counts a killed worker replaced');
like($t->log, qr/worker \d \(pid $victim\) killed by signal SIGKILL after \d+\.\ds/, 'its death is logged');

# ---- max_requests: workers recycled, no request lost ------------------------------------

my $log_len = length $t->log;
$t->write_conf(conf => { max_requests => 3 });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->status_json->{generation} == 2 }, timeout => 10), 'reload with max_requests = 3');
my @codes = map { api(GET => "/calls/status/$gone")->{status} } 1 .. 12;
is_deeply([ grep { $_ != 404 } @codes ], [], 'twelve requests across recycled workers: none lost');
ok($t->wait_until(sub { substr($t->log, $log_len) =~ /worker \d: served 3 requests \(max_requests 3\), exiting to be replaced/ }),
	'a worker that served max_requests exits');
like(substr($t->log, $log_len), qr/worker \d \(pid \d+\) exited with status 0 after/, '... with status 0');
unlike(substr($t->log, $log_len), qr/crash-loop backoff/, '... and is replaced at once, without backoff');

# ---- the outbox's depth and age, read from the database --------------------------------------

{
	my $m = $t->metrics;
	is($m->{'callstop_outbox_depth{state="pending"}'}, 0, 'outbox depth: none pending');
	is($m->{'callstop_outbox_depth{state="failed"}'}, 0, '... none failed');
	is($m->{callstop_outbox_oldest_pending_seconds}, 0, '... oldest pending: 0 when none');
	my $oc = fx_call($t, $tid, status => 'running');
	# not due for an hour: the retry child leaves them where they are
	$t->psql("INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, created_at, next_attempt_at)"
		. " VALUES ($tid, '$oc', 'livekit', 'r1', 'pending', now() - interval '2 hours', now() + interval '1 hour'),"
		. " ($tid, '$oc', 'livekit', 'r2', 'pending', now() - interval '1 minute', now() + interval '1 hour'),"
		. " ($tid, '$oc', 'livekit', 'r3', 'failed', now() - interval '3 hours', now()),"
		. " ($tid, '$oc', 'livekit', 'r4', 'done', now() - interval '4 hours', now())");
	$m = $t->metrics;
	is($m->{'callstop_outbox_depth{state="pending"}'}, 2, 'outbox depth: two pending');
	is($m->{'callstop_outbox_depth{state="failed"}'}, 1, '... one failed (a done row is not counted)');
	cmp_ok($m->{callstop_outbox_oldest_pending_seconds}, '>=', 7200, '... oldest pending: the two-hour-old one');
	cmp_ok($m->{callstop_outbox_oldest_pending_seconds}, '<', 7200 + 600, '... not the failed or done ones');
	$t->psql("DELETE FROM termination_outbox WHERE call_id = '$oc'");
}

# ---- 127.0.0.1 only ------------------------------------------------------------------------

for my $page ('/callstop-status', '/callstop-metrics') {
	my $r = $t->request(GET => $page, local_address => '127.0.0.2');
	is($r->{status}, 403, "$page from 127.0.0.2: 403");
	is($r->{json}{error}{code}, 'forbidden', '... in the unified JSON body') or diag($r->{body});
	unlike($r->{body}, qr/callstop_|pool/, '... nothing of the page');
}
my $from2 = $t->request(GET => "/calls/status/$gone", headers => { 'X-API-Key' => $key, 'X-Frontend-ID' => 'fe1' },
	local_address => '127.0.0.2');
is($from2->{status}, 404, 'the API itself is not restricted to 127.0.0.1');

# ---- callstopd needs CALLSTOP_INTERNAL ----------------------------------------------------------

for my $page ('/callstop-status', '/callstop-metrics') {
	my $f = $t->fcgi_request(params => { DOCUMENT_URI => $page });
	is($f->{status}, 404, "$page straight to callstopd without CALLSTOP_INTERNAL: 404");
	is($f->{json}{error}{code}, 'not_found', '... not_found');
	$f = $t->fcgi_request(params => { DOCUMENT_URI => $page, REQUEST_METHOD => 'POST' });
	is($f->{status}, 404, '... POST too (not 405: the route does not exist for it)');
	$f = $t->fcgi_request(params => { DOCUMENT_URI => $page, CALLSTOP_INTERNAL => '1' });
	is($f->{status}, 200, '... with CALLSTOP_INTERNAL=1: 200');
}

done_testing();
