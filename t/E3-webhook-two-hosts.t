#!/usr/bin/perl
# SPEC 9: two callstopd instances (two hosts) on one database: their delivery
# children share the deliveries with SKIP LOCKED, and each event is delivered
# once, in order per resource.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeReceiver;
use Fixtures qw(:all);
use List::Util qw(max);

my $N = 300;
my $rcv = FakeReceiver->new;
my $t = CallstopTest->new(workers => 2, instances => 2,
	conf => { 'webhook.enabled' => 'yes', 'webhook.poll_ms' => 200, 'webhook.concurrency' => 8 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my ($rc, $secret) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
chomp $secret;
# 20 ms an answer: both children have work in hand at once
$rcv->control(secrets => { good => $secret }, delay_ms => 20);
like($t->instance_log($_), qr/delivery child started/, "instance $_: a delivery child") for 0, 1;

# calls without targets: one call.cancelled each; cancelled 100 at a time
my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. $N;
while (my @chunk = splice @calls, 0, 100) {
	my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
		json => { resource_id => \@chunk });
	is($r->{status}, 200, 'cancelled ' . scalar @chunk) or diag($r->{body});
}
# each cancel marked its history row; the delivery children write the events
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_events}) >= $N }, timeout => scaled(30)),
	'the cancels announced');
is($t->psql_value(q{SELECT count(*) FROM webhook_events}), $N, "$N events");
is($t->psql_value(q{SELECT count(*) FROM cancel_history WHERE announce}), 0, '... none left to announce');
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'}) == $N },
	timeout => scaled(60)), 'all delivered');
sleep 1;
my @got = $rcv->requests;
my %n;
$n{ $_->{id} }++ for @got;
is(scalar keys %n, $N, "$N distinct events received");
is(scalar(grep { $_ > 1 } values %n), 0, 'each exactly once');
ok((!grep { !$_->{verified}{good} } @got), 'all verified');
is($t->psql_value(q{SELECT max(attempts) FROM webhook_deliveries}), 1, 'one attempt each');
# one child has at most webhook.concurrency (8) requests unanswered at once:
# more than 8 at the receiver means both children were delivering
my $most = max(map { my $r = $_; scalar grep { $_->{time} <= $r->{time} && ($_->{answered} // 9e15) > $r->{time} } @got }
	@got);
cmp_ok($most, '>', 8, "the two hosts shared the work: $most requests in flight at once");

done_testing();
