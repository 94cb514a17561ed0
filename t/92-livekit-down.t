#!/usr/bin/perl
# SPEC 6: LiveKit failing (500) or down (connection refused) does not fail
# the cancel: 200, the call is cancelled, the message says the termination
# is queued, and once LiveKit is back the retry child deletes the room.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel termination);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.backoff_base_ms' => 200, 'outbox.poll_ms' => 200, 'outbox.connect_timeout_ms' => 500,
		'outbox.timeout_ms' => 1000 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

# (nothing while the fake is stopped: it forgets its requests then)
sub deleted ($room) {
	my @r = eval { $fake->requests('livekit') };
	return grep { ($_->{room} // '') eq $room && ($_->{status} // 0) == 200 } @r;
}

sub queued_then_retried ($id, $room, $name, $down, $up) {
	subtest $name => sub {
		$down->();
		my $t0 = time;
		my $r = cancel($id);
		diag(sprintf '%s: cancel answered in %.0f ms', $name, (time - $t0) * 1000);
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is($r->{json}{status}, 'cancelled', 'cancelled');
		is($r->{json}{message}, 'Call cancelled. LiveKit room termination queued for retry.', 'message');
		is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'row cancelled');
		my $term = termination($id);
		is($term->{state}, 'pending', 'termination.state pending');
		like($term->{targets}[0]{last_error} // '', qr/\S/, "last_error: $term->{targets}[0]{last_error}");
		cmp_ok($term->{targets}[0]{attempts}, '>=', 1, 'attempted');
		like($t->log, qr/\[warn\] callstopd\[\d+\]: outbox \d+: livekit \Q$room\E: .*retry/,
			'a warning is logged');

		sleep 1;    # a few failed retries
		ok(!deleted($room), 'not deleted while LiveKit is down');
		$up->();
		my $t1 = time;
		ok($t->wait_until(sub { deleted($room) }, timeout => 10), 'the retry child deleted the room once back');
		diag(sprintf '%s: deleted %.2f s after LiveKit came back', $name, time - $t1);
		ok($t->wait_until(sub { termination($id)->{state} eq 'done' }, timeout => 5), 'termination.state done');
		my $rows = fx_row($t, "SELECT state, attempts FROM termination_outbox WHERE call_id = '$id'");
		diag("outbox row: state $rows->{state}, attempts $rows->{attempts}");
		sleep 0.5;
		is(scalar(() = deleted($room)), 1, 'deleted exactly once');
	};
}

my $c1 = fx_call($t, $tid, status => 'running', livekit_room => 'room-92-500');
queued_then_retried($c1, 'room-92-500', 'LiveKit answers 500',
	sub { $fake->control(livekit => '500') }, sub { $fake->control(livekit => '200') });

my $c2 = fx_call($t, $tid, status => 'running', livekit_room => 'room-92-down');
queued_then_retried($c2, 'room-92-down', 'LiveKit stopped (connection refused)',
	sub { $fake->stop }, sub { $fake->start });

my $c3 = fx_call($t, $tid, status => 'ringing', livekit_room => 'room-92-hang');
queued_then_retried($c3, 'room-92-hang', 'LiveKit hangs (request timeout)',
	sub { $fake->control(livekit => 'hang') }, sub { $fake->control(livekit => '200') });

done_testing();
