#!/usr/bin/perl
# SPEC 9: the delivery child SIGKILLed in the middle of its sends, then the
# master restarted: nothing is lost; a delivery that was on its way out is
# sent again once its claim expires, with the same webhook-id (at most a
# duplicate), and the order per call holds.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use FakeReceiver;
use Fixtures qw(:all);

my $N = 5;
my $rcv = FakeReceiver->new;
# timeout 2 s: a claim lasts 2 + 5 s
my ($t, $fake) = FakeProviders->harness(workers => 2, openai => 0,
	conf => { 'webhook.enabled' => 'yes', 'webhook.poll_ms' => 200, 'webhook.backoff_base_ms' => 200,
		'webhook.backoff_max_ms' => 1000, 'webhook.timeout_ms' => 2000 });
$t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $tid = $t->psql_value(q{SELECT id FROM tenants WHERE name = 'acme'});
my ($rc, $secret) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
chomp $secret;
$rcv->control(secrets => { good => $secret }, delay_ms => 60000);    # answers nothing meanwhile

sub delivery_pid () {
	my ($p) = grep { $_->{kind} eq 'delivery' } @{ $t->status_json->{processes} // [] };
	return $p ? $p->{pid} : undef;
}

my $pid = delivery_pid();
ok($pid, "the delivery child runs (pid @{[ $pid // '-' ]})");
my @calls = map { fx_call($t, $tid, status => 'running', livekit_room => "room-e2-$_") } 1 .. $N;
$t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $_ }) for @calls;
ok($t->wait_until(sub { scalar(() = $rcv->requests) >= $N }, timeout => scaled(20)),
	"$N deliveries on their way out");
is(scalar(grep { defined $_->{status} } $rcv->requests), 0, '... none answered yet');
kill 'KILL', $pid;
ok($t->wait_until(sub { my $p = delivery_pid(); $p && $p != $pid }, timeout => scaled(20)),
	'SIGKILLed: the master starts another delivery child');
$rcv->control(delay_ms => 0);
$t->restart_callstopd;
ok(delivery_pid(), 'master restarted, a delivery child again');
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'}) == 2 * $N },
	timeout => scaled(60)), 'every event delivered') or diag(explain($t->psql('SELECT id, state, attempts, last_error FROM webhook_deliveries')));
my @got = grep { defined $_->{status} && $_->{status} < 300 } $rcv->requests;
my %by_id;
push @{ $by_id{ $_->{id} } }, $_ for @got;
my @uids = map { $_->[0] } @{ $t->psql('SELECT uid FROM webhook_events') };
is_deeply([ sort keys %by_id ], [ sort @uids ], 'nothing lost: every event reached the receiver');
my @dups = grep { @{ $by_id{$_} } > 1 } keys %by_id;
cmp_ok(scalar @dups, '<=', $N, 'duplicates only of what was on its way out') or diag(explain(\@dups));
ok((!grep { my %b = map { $_->{raw} => 1 } @{ $by_id{$_} }; keys %b > 1 } keys %by_id),
	'a duplicate is the same event: same webhook-id, same body');
ok((!grep { !$_->{verified}{good} } @got), 'all verified');
my %first;
for my $e (sort { $a->{seq} <=> $b->{seq} } $rcv->requests) {
	my $k = "$e->{body}{data}{call_log_id} $e->{body}{type}";
	$first{$k} //= $e->{seq};
}
is(scalar(grep { $first{"$_ call.terminated"} < $first{"$_ call.cancelled"} } @calls), 0,
	'no call.terminated sent before its call.cancelled');

done_testing();
