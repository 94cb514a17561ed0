#!/usr/bin/perl
# SPEC 9: signed webhooks.  A receiver built on the official Standard
# Webhooks library (t/fake/receiver.mjs) verifies every delivery; each event
# type is emitted with its data exactly once per change, none for no-ops and
# unknown ids; a batch cancel of 1000 entries is one batch.cancelled; a force
# cancel gives each call its call.cancelled and then its call.terminated;
# webhook test, replay (same webhook-id), secret rotation (both signatures
# verify during the overlap) and 410 (the endpoint is disabled).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use FakeReceiver;
use Fixtures qw(:all);
use JSON::PP;
use MIME::Base64 qw(encode_base64);

my $rcv = FakeReceiver->new;
my ($t, $fake) = FakeProviders->harness(workers => 2, openai => 0,
	conf => { 'webhook.enabled' => 'yes', 'webhook.poll_ms' => 200, 'webhook.backoff_base_ms' => 200,
		'webhook.backoff_max_ms' => 1000 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $other = $t->tenant('other');

sub cancel ($id, %o) {
	return $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
		json => { resource_id => $id, %o });
}
sub events ($type = undef) {
	my @r = grep { $_->{status} && $_->{status} < 300 } $rcv->requests;
	return grep { !defined $type || $_->{body}{type} eq $type } @r;
}
# events written, and cancels announced but not yet written as events
# (sql/014_webhook_announce.sql): a no-op must have done neither
sub count_events () {
	return $t->psql_value('SELECT (SELECT count(*) FROM webhook_events)'
		. ' + (SELECT count(*) FROM cancel_history WHERE announce)');
}
sub wait_events ($n) { return $rcv->wait_requests($n, timeout => scaled(30)) }

# ---- webhook add: bad input changes nothing ----
my ($rc, $out, $err) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'));
is($rc, 2, 'add: an http:// URL without --allow-http is a usage error');
like($err, qr/expected https:\/\//, '... saying so');
($rc, $out, $err) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', 'https://x', '--events', 'call.nope');
is($rc, 2, 'add: an unknown event type is a usage error');
($rc, $out, $err) = $t->ctl('webhook', 'add', '--tenant', 'nobody', '--url', 'https://x.example');
is($rc, 1, 'add: an unknown tenant is an error');
is($t->psql_value('SELECT count(*) FROM webhook_endpoints'), 0, '... and nothing was written');

($rc, $out, $err) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
is($rc, 0, 'add with --allow-http') or diag($err);
chomp(my $secret = $out);
like($secret, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'the secret is printed once: whsec_ + base64 of 32 bytes');
like($err, qr/created webhook endpoint (\d+)/, '... the endpoint id on stderr');
my ($ep) = $err =~ /endpoint (\d+)/;
unlike(CallstopTest::_slurp($t->tmpdir . '/callstopd.log'), qr/\Q$secret\E/, 'the secret is not in the log');
my $bad = 'whsec_' . encode_base64(join('', map { chr int rand 256 } 1 .. 32), '');
$rcv->control(secrets => { good => $secret, bad => $bad });
my ($lrc, $list) = $t->ctl('webhook', 'list');
like($list, qr/\Q$ep\E\s+acme\s+\Q@{[ $rcv->url('a') ]}\E\s+\*\s+enabled/, 'webhook list shows it');
unlike($list, qr/whsec_/, '... never the secret');

# ---- one call: call.cancelled, then call.terminated ----
my $call = fx_call($t, $tid, status => 'running', livekit_room => 'room-e0');
my $r = cancel($call);
is($r->{status}, 200, 'cancel a call');
my ($route, $rid) = @{ $t->psql("SELECT route, request_id FROM cancel_history WHERE call_id = '$call'")->[0] };
is($rid, $r->{headers}{'x-request-id'}, 'cancel_history has the X-Request-Id');
my @got = wait_events(2);
is(scalar @got, 2, 'two deliveries');
my ($c) = events('call.cancelled');
my ($term) = events('call.terminated');
ok($c && $term, 'call.cancelled and call.terminated') or diag(explain(\@got));
is_deeply([ sort keys %{ $c->{body} } ], [qw(data timestamp type)], 'payload: type, timestamp, data');
ok(is_rfc3339_utc($c->{body}{timestamp}), '... timestamp RFC 3339 UTC') or diag($c->{body}{timestamp});
is_deeply($c->{body}{data}, { call_log_id => $call, status => 'cancelled', batch_job_id => undef,
	end_reason => 'cancelled', route => $route, request_id => $rid,
	cancelled_at => $c->{body}{data}{cancelled_at} }, 'call.cancelled data') or diag(explain($c->{body}));
ok(is_rfc3339_utc($c->{body}{data}{cancelled_at}), '... cancelled_at RFC 3339');
is($term->{body}{data}{call_log_id}, $call, 'call.terminated: call_log_id');
is_deeply([ map { [ $_->{provider}, $_->{target}, $_->{state} ] } @{ $term->{body}{data}{targets} } ],
	[ [ 'livekit', 'room-e0', 'done' ] ], '... its targets');
ok(defined $term->{body}{data}{seconds_to_silence} && $term->{body}{data}{seconds_to_silence} >= 0,
	'... seconds_to_silence');
# SPEC 9: the targets "as in 3.2" - the very items GET /calls/status shows,
# verified_at and seconds_to_silence (SPEC 11) included
my $st = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
is_deeply($term->{body}{data}{targets}, $st->{json}{call}{termination}{targets},
	'... its targets are those of the call status, field for field') or diag(explain($st->{json}));
cmp_ok($c->{seq}, '<', $term->{seq}, 'call.cancelled arrived before call.terminated');
ok((!grep { !$_->{verified}{good} } @got), 'every delivery verifies with the secret (standardwebhooks)');
ok((!grep { $_->{verified}{bad} } @got), '... and none with another secret');
like($c->{id}, qr/^evt_[0-9a-f]{32}$/, 'webhook-id is the event id');
like($c->{signature}, qr{^v1,[A-Za-z0-9+/]{43}=$}, 'one v1 signature');

# ---- a target that fails: call.termination_failed ----
$rcv->reset;
my $call_f = fx_call($t, $tid, status => 'running', livekit_room => 'room-e0f', openai_call_id => 'oa-e0f');
cancel($call_f);
wait_events(2);
my ($tf) = events('call.termination_failed');
ok($tf, 'OpenAI not configured: call.termination_failed') or diag(explain([ $rcv->requests ]));
is($tf->{body}{data}{call_log_id}, $call_f, '... its call_log_id');
is_deeply([ map { [ $_->{provider}, $_->{state} ] } @{ $tf->{body}{data}{targets} } ],
	[ [ 'livekit', 'done' ], [ 'openai', 'failed' ] ], '... its targets');
cmp_ok((events('call.cancelled'))[0]{seq}, '<', $tf->{seq}, '... after its call.cancelled');
is(scalar(events()), 2, '... and nothing else');

# ---- no events for no-ops and unknown ids ----
my $n0 = count_events();
cancel($call);
cancel(fx_uuid());
cancel('batch-nope');
is(count_events(), $n0, 'no event for a cancel of a cancelled call or of unknown ids');
my $call_other = fx_call($t, $other, status => 'running');
$t->api(POST => '/calls/cancel', key => $t->key(tenant => 'other', frontend_id => 'fe2'), frontend => 'fe2',
	json => { resource_id => $call_other });
is(count_events(), $n0, 'no event for a tenant without endpoints');

# ---- a batch of 1000 entries: one batch.cancelled ----
$rcv->reset;
my $batch = fx_batch($t, $tid, 'batch-e0', 1000);
$r = cancel('batch-e0');
is($r->{json}{cancelled_count}, 1000, 'batch of 1000 cancelled');
@got = wait_events(1);
sleep 1;
@got = events();
is(scalar @got, 1, 'one delivery for the batch cancel');
is($got[0]{body}{type}, 'batch.cancelled', '... batch.cancelled');
is_deeply($got[0]{body}{data}, { job_id => 'batch-e0', batch_id => $batch, force => JSON::PP::false,
	cancelled_count => 1000, pending_cancelled => 1000, active_calls => 0, route => $route,
	request_id => $r->{headers}{'x-request-id'}, cancelled_at => $got[0]{body}{data}{cancelled_at} }, '... its data');
ok(is_rfc3339_utc($got[0]{body}{data}{cancelled_at}), '... cancelled_at RFC 3339') or diag($got[0]{body}{data}{cancelled_at});
is($t->psql_value(q{SELECT count(*) FROM webhook_events WHERE type = 'batch.cancelled'}), 1,
	'one event row for 1000 entries');

# ---- force: each call's call.cancelled, then its call.terminated ----
$rcv->reset;
my $fb = FakeProviders::running_batch($t, $tid, 'batch-e0f', 3, room => 'rf');
$r = cancel('batch-e0f', force => JSON::PP::true);
is($r->{json}{cancelled_count}, 3, 'force cancel of 3 running calls');
wait_events(7);
sleep 1;
@got = events();
is(scalar(events('batch.cancelled')), 1, 'one batch.cancelled');
is(scalar(events('call.cancelled')), 3, 'three call.cancelled');
is(scalar(events('call.terminated')), 3, 'three call.terminated');
is(scalar @got, 7, 'nothing else');
my %first;
for my $e (@got) {
	my $id = $e->{body}{data}{call_log_id} // next;
	push @{ $first{$id} }, $e->{body}{type};
}
is_deeply([ values %first ], [ map { [qw(call.cancelled call.terminated)] } 1 .. 3 ],
	'each call: call.cancelled, then call.terminated');
is((events('call.cancelled'))[0]{body}{data}{batch_job_id}, 'batch-e0f', 'call.cancelled: batch_job_id');
ok((!grep { !$_->{verified}{good} } @got), 'all verified');

# ---- webhook test, replay ----
$rcv->reset;
($rc, $out, $err) = $t->ctl('webhook', 'test', $ep);
is($rc, 0, 'webhook test') or diag($err);
my ($test_id) = $out =~ /(evt_[0-9a-f]+)/;
@got = wait_events(1);
is($got[0]{body}{type}, 'webhook.test', 'webhook.test delivered');
is($got[0]{id}, $test_id, '... with the event id printed');
($rc, $out, $err) = $t->ctl('webhook', 'replay', $c->{id});
is($rc, 0, 'webhook replay') or diag($err);
@got = wait_events(2);
is($got[1]{id}, $c->{id}, 'replay re-sends with the same webhook-id');
is($got[1]{raw}, $c->{raw}, '... and the same body');
ok($got[1]{verified}{good}, '... signed anew');
($rc, $out, $err) = $t->ctl('webhook', 'replay', 'evt_nope');
is($rc, 1, 'replay of an unknown event is an error');
($rc, $out) = $t->ctl('webhook', 'deliveries', '--endpoint', $ep, '--state', 'delivered');
like($out, qr/\Q$c->{id}\E\s+call\.cancelled/, 'webhook deliveries lists them');
($rc, $out, $err) = $t->ctl('webhook', 'deliveries', '--state', 'done');
is($rc, 2, 'webhook deliveries --state done: usage error');
is($err, "callstopctl: webhook deliveries: --state: expected pending, delivered or failed, got 'done'\n",
	'... naming the states of SPEC 9');

# ---- rotation: both signatures verify during the overlap ----
$rcv->reset;
($rc, $out, $err) = $t->ctl('webhook', 'rotate-secret', $ep, '--overlap', '3600');
is($rc, 0, 'rotate-secret') or diag($err);
chomp(my $new = $out);
like($new, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'a new secret');
isnt($new, $secret, '... another one');
$rcv->control(secrets => { old => $secret, new => $new, bad => $bad });
$t->ctl('webhook', 'test', $ep);
@got = wait_events(1);
like($got[0]{signature}, qr{^v1,\S+ v1,\S+$}, 'two signatures during the overlap');
ok($got[0]{verified}{new}, '... the new secret verifies');
ok($got[0]{verified}{old}, '... the old one too');
ok(!$got[0]{verified}{bad}, '... not another');
$t->ctl('webhook', 'rotate-secret', $ep, '--overlap', '0');
$rcv->reset;
$t->ctl('webhook', 'test', $ep);
@got = wait_events(1);
like($got[0]{signature}, qr{^v1,\S+$}, 'one signature after the overlap');

# ---- metrics ----
my $m = $t->request(GET => '/callstop-metrics')->{body};
like($m, qr/^callstop_webhook_deliveries_total\{outcome="delivered"\} [1-9]\d*$/m, 'metrics: delivered');
like($m, qr/^callstop_webhook_events_total [1-9]\d*$/m, 'metrics: events written');
like($m, qr/^callstop_webhook_queue_depth\{state="pending"\} \d+$/m, 'metrics: queue depth');
like($m, qr/^callstop_webhook_oldest_undelivered_seconds \d+$/m, 'metrics: oldest undelivered');

# ---- 410 disables the endpoint ----
$rcv->reset;
$rcv->control(status => [410]);
cancel(fx_call($t, $tid, status => 'running'));
$rcv->wait_requests(1, any => 1, timeout => scaled(30));
ok($t->wait_until(sub { $t->psql_value("SELECT state FROM webhook_endpoints WHERE id = $ep") eq 'disabled' },
	timeout => scaled(10)), '410: the endpoint is disabled');
($lrc, $list) = $t->ctl('webhook', 'list');
like($list, qr/disabled \(410 Gone\)/, '... webhook list says why');
my $n1 = count_events();
cancel(fx_call($t, $tid, status => 'running'));
is(count_events(), $n1, 'no more events for it');
$m = $t->request(GET => '/callstop-metrics')->{body};
like($m, qr/^callstop_webhook_deliveries_total\{outcome="gone"\} 1$/m, 'metrics: gone');

($rc, $out) = $t->ctl('webhook', 'remove', $ep);
is($rc, 0, 'webhook remove');
($rc) = $t->ctl('webhook', 'remove', $ep);
is($rc, 1, '... twice is an error');

done_testing();
