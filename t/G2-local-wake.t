#!/usr/bin/perl
# Local wake-ups: callstopd's own processes wake the retry and delivery
# children of their host directly after their commit, and no longer NOTIFY
# callstop_outbox or callstop_webhook for them (a notifying transaction holds
# PostgreSQL's database-wide notify lock from its pre-commit to the flush of
# its commit record: it serialises the cancels' commits).  Both children's
# sweeps are set to 60 s, so only a wake-up makes anything happen promptly.
#   A: a cancel through nginx: DeleteRoom, read-back, done, call.cancelled and
#      call.terminated delivered, and no NOTIFY at all on either channel;
#   B: the same cancel from an ordinary SQL client (callstop_cancel() in psql)
#      still NOTIFYs both channels, and its call.cancelled is delivered;
#   C: a second callstopd with [webhook] enabled = no (another host's delivery
#      child must hear it): its cancel NOTIFYs callstop_webhook, and the first
#      instance's delivery child delivers the call.cancelled.
# A psql session LISTENs all along; a NOTIFY on a channel of the test's own
# (g2_mark) brackets each phase: the queue is in commit order, so whatever
# committed between two marks is read between them.

use v5.36;
use Test::More tests => 19;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel termination);
use FakeProviders;
use FakeReceiver;
use Fixtures qw(:all);
use JSON::PP;
use POSIX qw(_exit);

my $rcv = FakeReceiver->new;
my ($t, $fake) = FakeProviders->harness(workers => 2, openai => 0, instances => 2,
	conf => { 'webhook.enabled' => 'yes', 'outbox.poll_ms' => 60000, 'webhook.poll_ms' => 60000 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my (undef, $secret) = $t->ctl('webhook', 'add', '--tenant', 'acme', '--url', $rcv->url('a'), '--allow-http');
chomp $secret;
$rcv->control(secrets => { good => $secret });

# ---- the listener: LISTEN, then 0.1 s sleeps; psql prints each notification
# after the statement it arrived during.  It stops with the test (END), or by
# itself once the server is gone (ON_ERROR_STOP) or after 10 minutes.
my $dir = $t->tmpdir;
CallstopTest::_spew("$dir/listen.sql", "LISTEN callstop_outbox;\nLISTEN callstop_webhook;\nLISTEN g2_mark;\n"
	. "DO 'BEGIN PERFORM pg_sleep(0.1); END';\n" x 6000);
my $owner = $$;
my $listener = fork // die "fork: $!";
if ($listener == 0) {
	open(STDIN, '<', '/dev/null') && open(STDOUT, '>', "$dir/listen.out") && open(STDERR, '>&', \*STDOUT)
		or _exit(127);
	exec { $t->{psql} } $t->{psql}, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $t->conninfo,
		'-f', "$dir/listen.sql" or _exit(127);
}
END {
	if ($listener && $$ == $owner) {
		kill 'TERM', $listener;
		waitpid($listener, 0);
	}
}

# [[channel, payload, pid], ...] as received so far, in order
sub heard () {
	my @n;
	for (split /\n/, CallstopTest::_slurp("$dir/listen.out")) {
		push @n, [ $1, $2 // '', $3 ]    # psql leaves out an empty payload
			if /^Asynchronous notification "([^"]+)"(?: with payload "([^"]*)")? received from server process with PID (\d+)\./;
	}
	return @n;
}

# NOTIFY g2_mark, $name and wait until the listener has read it.
sub mark ($name) {
	$t->psql("NOTIFY g2_mark, '$name'");
	note(sprintf '%.2f mark %s', Time::HiRes::time(), $name);
	$t->wait_until(sub { grep { $_->[0] eq 'g2_mark' && $_->[1] eq $name } heard() }, timeout => 25)
		or BAIL_OUT("the listener never heard mark $name:\n" . CallstopTest::_slurp("$dir/listen.out"));
}

# The notifications on callstopd's channels between two marks.
sub between ($from, $to) {
	my ($in, @n) = (0);
	for my $n (heard()) {
		if ($n->[0] eq 'g2_mark') {
			$in = 1 if $n->[1] eq $from;
			last if $n->[1] eq $to;
			next;
		}
		push @n, $n if $in;
	}
	return @n;
}

sub show (@n) { return join('', map { "heard $_->[0] '$_->[1]' from backend $_->[2]\n" } @n) || "heard nothing\n" }

# The verified deliveries of one call's event of $type.
sub delivered ($call, $type) {
	return grep { $_->{status} && $_->{status} < 300 && $_->{body}{type} eq $type
		&& ($_->{body}{data}{call_log_id} // '') eq $call } $rcv->requests;
}

# a NOTIFY before the LISTENs would be lost: wait for the first sleep
$t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
	AND query LIKE 'DO ''BEGIN PERFORM pg_sleep%'}) > 0 }, timeout => 15)
	or BAIL_OUT("the listener did not start:\n" . CallstopTest::_slurp("$dir/listen.out"));
mark('start');

# ---- A: a cancel through nginx (instance 1 is down: nginx passes it to 0) ----
my $a = fx_call($t, $tid, status => 'running', livekit_room => 'room-g2-a');
mark('A0');
is(cancel($a)->{status}, 200, 'A: cancel through nginx');
ok($t->wait_until(sub { delivered($a, 'call.cancelled') && delivered($a, 'call.terminated') }, timeout => 25),
	'A: call.cancelled and call.terminated delivered (the sweeps are 60 s away)')
	or diag(explain([ $rcv->requests ]));
my ($ac) = delivered($a, 'call.cancelled');
my ($at) = delivered($a, 'call.terminated');
ok($ac && $at && $ac->{seq} < $at->{seq}, 'A: call.cancelled first');
ok($ac && $at && $ac->{verified}{good} && $at->{verified}{good}, 'A: both signatures verify');
my $term = termination($a);
is($term->{targets}[0]{state}, 'done', 'A: the room target is done') or diag(explain($term));
ok($term->{targets}[0]{verified_at}, 'A: ... with verified_at (read back by the retry child)');
is(scalar(() = $fake->requests('livekit')), 1, 'A: one DeleteRoom');
mark('A1');
my @heard = between('A0', 'A1');
is(scalar(grep { $_->[0] eq 'callstop_outbox' } @heard), 0, 'A: no NOTIFY callstop_outbox') or diag(show(@heard));
is(scalar(grep { $_->[0] eq 'callstop_webhook' } @heard), 0, 'A: no NOTIFY callstop_webhook');

# ---- B: an ordinary SQL client still NOTIFYs ----
my $b = fx_call($t, $tid, status => 'running', livekit_room => 'room-g2-b');
mark('B0');
my $row = $t->psql(qq{SELECT pg_backend_pid(), outcome FROM callstop_cancel($tid, '{call}', ARRAY['$b'], false,
	'/calls/cancel', NULL, 'req-g2-b', 'cancelled', '{livekit,openai}')})->[0];
is($row->[1], 'cancelled', 'B: callstop_cancel() from psql, autocommit');
ok($t->wait_until(sub { delivered($b, 'call.cancelled') }, timeout => 25),
	'B: its call.cancelled delivered (the delivery child was woken by the NOTIFY)');
mark('B1');
@heard = between('B0', 'B1');
ok((grep { $_->[0] eq 'callstop_outbox' && $_->[2] == $row->[0] } @heard), 'B: the client NOTIFYed callstop_outbox')
	or diag(show(@heard));
ok((grep { $_->[0] eq 'callstop_webhook' && $_->[2] == $row->[0] } @heard), 'B: ... and callstop_webhook');

# ---- C: a second callstopd without a delivery child still NOTIFYs callstop_webhook ----
my $conf1 = CallstopTest::_slurp($t->instance_conf_file(1));
ok($conf1 =~ s/^(\[webhook\]\n(?:[^\[\n][^\n]*\n)*?)enabled = yes$/${1}enabled = no/m,
	'C: instance 1 configured with [webhook] enabled = no');
CallstopTest::_spew($t->instance_conf_file(1), $conf1);
my %before = map { $_->[0] => 1 } @{ $t->psql(q{SELECT pid FROM pg_stat_activity}) };
$t->start_instance(1);
ok($t->wait_until(sub { $t->instance_log(1) =~ /retry child started/ }, timeout => 15), 'C: instance 1 started');
unlike($t->instance_log(1), qr/delivery child started/, 'C: ... without a delivery child');
my $c = fx_call($t, $tid, status => 'running', livekit_room => 'room-g2-c');
mark('C0');
# straight to instance 1's socket: nginx would pick either instance
my $body = JSON::PP->new->encode({ resource_id => $c });
my $r = $t->fcgi_request(instance => 1, body => $body, params => { REQUEST_METHOD => 'POST',
	DOCUMENT_URI => '/calls/cancel', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => length $body,
	HTTP_X_API_KEY => $key, HTTP_X_FRONTEND_ID => 'fe1', REQUEST_ID => 'req-g2-c' });
is($r->{status}, 200, 'C: cancel through instance 1') or diag($r->{body});
ok($t->wait_until(sub { delivered($c, 'call.cancelled') }, timeout => 25),
	"C: its call.cancelled delivered by instance 0's delivery child");
mark('C1');
@heard = between('C0', 'C1');
# instance 1's backends are those that were not there before it started
ok((grep { $_->[0] eq 'callstop_webhook' && !$before{ $_->[2] } } @heard), 'C: instance 1 NOTIFYed callstop_webhook')
	or diag(show(@heard));
note("phase C:\n" . show(@heard));
