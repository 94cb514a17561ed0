#!/usr/bin/perl
# SPEC 9, issue 14: a cancel of a call announces call.cancelled through its
# cancel_history row (sql/014_webhook_announce.sql), not through an event row
# written in its transaction; the delivery child's step before each claim,
# callstop_webhook_announce(), writes the event exactly as the cancel did
# before (data, timestamp, deliveries), once.  callstopd runs with its
# delivery child off here, so that the test publishes by hand and sees each
# state in between:
# - the cancel's transaction marks its history row (an endpoint wants
#   call.cancelled) and writes no event; nothing is marked for a tenant
#   without endpoints or an endpoint that does not want the type, nor for
#   a no-op; the queue depth metric counts the marked row;
# - publishing writes the event with the request's route and X-Request-Id,
#   the cancel's time, one delivery per endpoint that wants it and was there
#   at the cancel, and clears the mark; a second run publishes nothing;
# - a later event of the call (call.terminated) publishes the marked row
#   first: seq keeps the order of the changes;
# - two publishers at once: the second skips what the first holds (it does
#   not wait); the first killed before its commit loses nothing; each call
#   gets one event.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Background qw(bg bg_result);
use Fixtures qw(:all);
use JSON::PP;

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $other = $t->tenant('other');
my $okey = $t->key(tenant => 'other', frontend_id => 'fe2');
my $picky = $t->tenant('picky');
my $pkey = $t->key(tenant => 'picky', frontend_id => 'fe3');
my $JSON = JSON::PP->new->utf8;

sub add_endpoint ($tenant, @more) {
	my ($rc, undef, $err) = $t->ctl('webhook', 'add', '--tenant', $tenant, '--url',
		"https://hooks.example/$tenant/" . fx_uuid(), @more);
	is($rc, 0, "webhook add for $tenant");
	my ($id) = $err =~ /endpoint (\d+)/;
	return $id;
}
my $ep = add_endpoint('acme');
add_endpoint('picky', '--events', 'batch.cancelled');

sub cancel ($key, $fe, $id) {
	return $t->api(POST => '/calls/cancel', key => $key, frontend => $fe, json => { resource_id => $id });
}
sub marked ($call) {
	return $t->psql_value("SELECT count(*) FROM cancel_history WHERE call_id = '$call' AND announce");
}
sub events_of ($call) {
	return $t->psql("SELECT type, seq, body FROM webhook_events WHERE resource_type = 'call'"
		. " AND resource_id = '$call' ORDER BY seq");
}
sub publish ($limit = 100) { return $t->psql_value("SELECT callstop_webhook_announce($limit)") }

# ---- the cancel marks, and writes no event ----
my $call = fx_call($t, $tid, status => 'running');
my $r = cancel($key, 'fe1', $call);
is($r->{status}, 200, 'a call cancelled');
is(marked($call), 1, 'its history row is marked to announce');
is(scalar @{ events_of($call) }, 0, '... and its transaction wrote no event');
is($t->psql_value('SELECT count(*) FROM webhook_deliveries'), 0, '... nor a delivery');
is($t->metrics->{'callstop_webhook_queue_depth{state="pending"}'}, 1, 'the queue depth counts it');

my $n0 = $t->psql_value('SELECT count(*) FROM cancel_history WHERE announce');
cancel($key, 'fe1', $call);
cancel($key, 'fe1', fx_uuid());
is($t->psql_value('SELECT count(*) FROM cancel_history WHERE announce'), $n0, 'nothing marked for a no-op');
my $call_o = fx_call($t, $other, status => 'running');
is(cancel($okey, 'fe2', $call_o)->{status}, 200, 'a call of a tenant without endpoints cancelled');
is(marked($call_o), 0, '... not marked');
my $call_p = fx_call($t, $picky, status => 'running');
is(cancel($pkey, 'fe3', $call_p)->{status}, 200, 'a call of a tenant whose endpoint wants batch.cancelled only');
is(marked($call_p), 0, '... not marked');

# ---- publishing ----
my $ep_later = add_endpoint('acme');
isnt($ep_later, $ep, 'a second endpoint added after the cancel');
is(publish(), 1, 'callstop_webhook_announce() publishes one');
my $ev = events_of($call);
is(scalar @$ev, 1, 'one event');
is($ev->[0][0], 'call.cancelled', '... call.cancelled');
is($ev->[0][1], 1, '... seq 1');
my $body = $JSON->decode($ev->[0][2]);
my ($route, $rid, $at) = @{ $t->psql("SELECT route, request_id, callstop_rfc3339(at) FROM cancel_history"
	. " WHERE call_id = '$call'")->[0] };
my $ended = $t->psql_value("SELECT callstop_rfc3339(ended_at) FROM voice_call_logs WHERE id = '$call'");
is($rid, $r->{headers}{'x-request-id'}, 'the history row has the X-Request-Id');
is_deeply($body, { type => 'call.cancelled', timestamp => $at,
	data => { call_log_id => $call, status => 'cancelled', batch_job_id => undef, end_reason => 'cancelled',
		cancelled_at => $ended, route => $route, request_id => $rid } },
	"the payload: the cancel's data, route, request id and time") or diag(explain($body));
is_deeply($t->psql("SELECT d.endpoint_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
	. " WHERE e.resource_id = '$call'"), [ [$ep] ], 'one delivery, to the endpoint there was at the cancel');
is(marked($call), 0, 'the mark cleared');
is(publish(), 0, 'a second run publishes nothing');
is(scalar @{ events_of($call) }, 1, '... still one event');

# ---- a later event of the call publishes the marked row first ----
my $call2 = fx_call($t, $tid, status => 'running');
cancel($key, 'fe1', $call2);
is(marked($call2), 1, 'a second call cancelled and marked');
$t->psql("SELECT callstop_event($tid, 'call.terminated', 'call', '$call2', '{\"call_log_id\": \"$call2\"}')");
is_deeply([ map { [ $_->[0], $_->[1] ] } @{ events_of($call2) } ], [ [ 'call.cancelled', 1 ], [ 'call.terminated', 2 ] ],
	'call.terminated written while call.cancelled was marked: call.cancelled seq 1, call.terminated seq 2');
is(marked($call2), 0, '... the mark cleared');
is(publish(), 0, '... and the sweep finds nothing');

# ---- two publishers at once ----
my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. 5;
is(cancel($key, 'fe1', $_)->{status}, 200, 'cancelled') for @calls;
my $in = join(',', map {"'$_'"} @calls);
my $held = bg($t, sub {
	eval { $t->psql('BEGIN; SELECT callstop_webhook_announce(100); SELECT pg_sleep(120); COMMIT;') };
	return { status => 200, body => '' };
});
my $holding = sub {
	$t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%'
		AND state = 'active' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()});
};
ok($t->wait_until(sub { $holding->() == 1 }, timeout => scaled(30)), 'a publisher holds the calls, uncommitted');
is(publish(), 0, 'a second publisher meanwhile publishes none of them');
is($holding->(), 1, '... and did not wait for the first (still uncommitted)');
$t->psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%'
	AND pid <> pg_backend_pid()});
bg_result($held);
is($t->psql_value("SELECT count(*) FROM webhook_events WHERE resource_id IN ($in)"), 0,
	'the first publisher killed before its commit: no event written');
is(publish(), 5, '... and nothing lost: the next run publishes the five');
is($t->psql_value("SELECT count(*) FROM webhook_events WHERE resource_id IN ($in)"), 5, 'one event per call');
is($t->psql_value("SELECT count(*) FROM cancel_history WHERE call_id IN ($in) AND announce"), 0, 'no mark left');

done_testing();
