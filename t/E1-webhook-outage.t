#!/usr/bin/perl
# SPEC 9: the receiver is down for a while: deliveries are retried with
# backoff and all arrive once it is back, each once, in order per resource
# (a call's call.terminated never before its call.cancelled is delivered).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use FakeReceiver;
use List::Util qw(max min);
use Fixtures qw(:all);

my $N = 20;
my $rcv = FakeReceiver->new;
my ($t, $fake) = FakeProviders->harness(workers => 2, openai => 0,
	conf => { 'webhook.enabled' => 'yes', 'webhook.poll_ms' => 200, 'webhook.backoff_base_ms' => 200,
		'webhook.backoff_max_ms' => 1000 });
$t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $tid = $t->psql_value(q{SELECT id FROM tenants WHERE name = 'acme'});
my ($rc, $secret) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
chomp $secret;
$rcv->control(secrets => { good => $secret });

$rcv->stop;
my @calls = map { fx_call($t, $tid, status => 'running', livekit_room => "room-e1-$_") } 1 .. $N;
for my $call (@calls) {
	my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $call });
	is($r->{status}, 200, 'cancelled') or diag($r->{body});
}
$t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_events}) >= 2 * $N }, timeout => scaled(30));
is($t->psql_value(q{SELECT count(*) FROM webhook_events}), 2 * $N, "$N call.cancelled and $N call.terminated written");
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_deliveries WHERE attempts >= 2}) >= $N },
	timeout => scaled(30)), 'the receiver is down: deliveries retried');
# the delay each failed attempt set (the result statement sets updated_at and
# next_attempt_at together): base 200 ms doubled per attempt, at most 1000
# ms, times a jitter of 0.5 to 1
$t->wait_until(sub { $t->psql_value(q{SELECT max(attempts) FROM webhook_deliveries}) >= 3 }, timeout => scaled(10));
my $waits = $t->psql(q{SELECT attempts, round(extract(epoch FROM next_attempt_at - updated_at) * 1000)
	FROM webhook_deliveries WHERE state = 'pending' AND claimed_until IS NULL AND attempts >= 1});
my @off = grep { my $max = min(200 * 2**($_->[0] - 1), 1000); $_->[1] < $max / 2 - 1 || $_->[1] > $max + 1 } @$waits;
ok(@$waits && !@off, 'each retry waits its backoff (' . scalar(@$waits) . ' rows: attempts, ms): '
	. join(' ', map { "$_->[0]:$_->[1]" } @$waits[ 0 .. min(5, $#$waits) ])) or diag(explain(\@off));
cmp_ok(max(map { $_->[0] } @$waits), '>=', 3, '... also past the first doubling') if @$waits;
is($t->psql_value(q{SELECT count(*) FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
	WHERE e.type = 'call.terminated' AND d.attempts > 0}), 0,
	'no call.terminated attempted while its call.cancelled is undelivered');
sleep 2;
$rcv->start;
my @got = $rcv->wait_requests(2 * $N, timeout => scaled(60));
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'}) == 2 * $N },
	timeout => scaled(30)), 'back up: everything delivered');
@got = $rcv->requests;
is(scalar @got, 2 * $N, 'each event once');
my %ids = map { $_->{id} => 1 } @got;
is(scalar keys %ids, 2 * $N, '... distinct webhook-ids');
ok((!grep { !$_->{verified}{good} } @got), 'all verified');
my %order;
push @{ $order{ $_->{body}{data}{call_log_id} } }, $_->{body}{type} for sort { $a->{seq} <=> $b->{seq} } @got;
is_deeply([ map { $order{$_} } @calls ], [ map { [qw(call.cancelled call.terminated)] } @calls ],
	'in order per call');
my $m = $t->request(GET => '/callstop-metrics')->{body};
like($m, qr/^callstop_webhook_deliveries_total\{outcome="retry"\} [1-9]\d*$/m, 'metrics: retries counted');
like($m, qr/^callstop_webhook_queue_depth\{state="pending"\} 0$/m, 'metrics: queue empty');

done_testing();
