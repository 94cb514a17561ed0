#!/usr/bin/perl
# SPEC 9, sql/014_webhook_announce.sql: a backlog of announced cancels (more
# than one claim's worth: the delivery child stopped while 300 calls were
# cancelled) is worked off by the drain that the cancels' wake-ups start, not
# one claim's worth per sweep (the sweep is set to 60 s, so only that drain
# can finish within the deadlines):
# - with the endpoint there: each call's call.cancelled delivered once, signed;
# - with the endpoint removed meanwhile: the marks are cleared (nothing to
#   send), all of them, although no claim finds anything to send.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use FakeReceiver;
use Fixtures qw(:all);
use List::Util qw(min);

my $N = 300;
my $rcv = FakeReceiver->new;
sub answered () { return grep { $_->{status} && $_->{status} < 300 } $rcv->requests }
my ($t, $fake) = FakeProviders->harness(workers => 2, openai => 0,
	conf => { 'webhook.enabled' => 'yes', 'webhook.poll_ms' => 60000, 'webhook.concurrency' => 16 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my ($rc, $secret) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
is($rc, 0, 'an endpoint');
chomp $secret;
$rcv->control(secrets => { good => $secret });

my ($p) = grep { $_->{kind} eq 'delivery' } @{ $t->status_json->{processes} // [] };
ok($p, 'the delivery child runs') or BAIL_OUT('no delivery child');
sub announced () { return $t->psql_value('SELECT count(*) FROM cancel_history WHERE announce') }

# The delivery child stopped, $N calls cancelled (100 a request); returns them.
sub backlog ($what) {
	kill 'STOP', $p->{pid};
	my @calls = map { fx_call($t, $tid, status => 'running') } 1 .. $N;
	for my $i (0 .. $#calls / 100) {
		my @chunk = grep { defined } @calls[ 100 * $i .. 100 * $i + 99 ];
		my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => \@chunk });
		is($r->{status}, 200, "$what: cancelled " . scalar @chunk) or diag($r->{body});
	}
	is(announced(), $N, "$what: the delivery child stopped, $N cancels announced, none written as events");
	return @calls;
}

# ---- the endpoint there ----
my @calls = backlog('endpoint there');
kill 'CONT', $p->{pid};
# the sweep is 60 s away: within 50 s only the wake-ups' drain delivers
ok($t->wait_until(sub { scalar(answered()) >= $N },
	timeout => min(scaled(40), 50)), "all $N delivered by the drain the wake-ups started")
	or diag(announced() . ' still announced');
my %n;
$n{ $_->{body}{data}{call_log_id} }++ for answered();
is_deeply([ sort keys %n ], [ sort @calls ], 'one call.cancelled for each call');
is(scalar(grep { $_ > 1 } values %n), 0, '... each once');
ok((!grep { !$_->{verified}{good} } $rcv->requests), '... all signed with the secret');
is(announced(), 0, 'nothing left announced');

# ---- the endpoint removed meanwhile ----
my ($ep) = map { $_->[0] } @{ $t->psql('SELECT id FROM webhook_endpoints') };
backlog('endpoint removed');
is(($t->ctl('webhook', 'remove', $ep))[0], 0, 'the endpoint removed while the delivery child is stopped');
$rcv->reset;
kill 'CONT', $p->{pid};
ok($t->wait_until(sub { announced() == 0 }, timeout => min(scaled(40), 50)),
	"all $N marks cleared by the drain the wake-ups started") or diag(announced() . ' still announced');
is($t->psql_value("SELECT count(*) FROM webhook_events WHERE type = 'call.cancelled'"), $N,
	'no event written for them (only the first ones)');
is(scalar(() = $rcv->requests), 0, 'nothing sent');

done_testing();
