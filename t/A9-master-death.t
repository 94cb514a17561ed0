#!/usr/bin/perl
# The master dies (SIGKILL, the OOM killer): no child may keep the listening
# socket (issue 10, defect 4).  The retry child used to inherit it and keep
# it through its round in hand (a hanging provider: up to outbox.timeout_ms
# and more), so a restarted callstopd found the path "in use by a running
# process" and would not start, and nginx's requests queued on the orphan
# socket.  Every child exits once the master is gone (PR_SET_PDEATHSIG), and
# a new callstopd binds the same path at once.  The retry child does not
# finish its round first either (it did, after closing the socket): with
# outbox.timeout_ms at its largest, 120 s, it is gone within a fraction of
# that (its claimed row is retried once the claim expires).

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { 'outbox.timeout_ms' => 120000, 'outbox.poll_ms' => 200, 'outbox.backoff_base_ms' => 200,
		'outbox.backoff_max_ms' => 500, 'outbox.max_attempts' => 1000 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $sock = $t->tmpdir . '/callstopd.sock';

sub started_lines () { return scalar(() = $t->log =~ /callstopd \S+ started: /g) }

# A room whose DeleteRoom hangs: the retry child is in the middle of a round.
my $batch = FakeProviders::running_batch($t, $tid, 'batch-a9', 1, room => 'ra9');
$fake->control(livekit => '500');
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
	json => { resource_id => 'batch-a9', force => JSON::PP::true });
is($r->{status}, 200, 'the cancel is answered; its room is left to the retry child') or diag($r->{body});
$fake->control(livekit => 'hang');
ok($t->wait_until(sub { grep { !defined $_->{status} } $fake->requests('livekit') }, timeout => 60),
	'the retry child is waiting on a hanging LiveKit');

my $master = $t->callstopd_pid;
my @children = $t->worker_pids;
is(scalar @children, 3, 'two workers and the retry child');
my $started = started_lines();
kill 'KILL', $master;
waitpid($master, 0);
delete $t->{callstopd_pid};
my $t0 = time;

# Started by hand: the harness would unlink the path first, which hides the
# orphan.  A unit (systemd, a supervisor) restarts it on the same path.
my ($pid, $why) = $t->_spawn_callstopd($t->conf_file, $t->tmpdir . '/callstopd.stderr', $sock,
	sub ($p) { $t->{callstopd_pid} = $p });
my $up = $why ? 'exited' : $t->wait_until(sub {
	my $w = waitpid($pid, WNOHANG);
	return 'exited' if $w == $pid || $w < 0;
	return started_lines() > $started && $t->worker_pids == 3;
}, timeout => 60);
ok($up && $up ne 'exited', 'a new callstopd binds the same socket at once')
	or do { diag($t->log =~ /(listen .*in use[^\n]*)/); delete $t->{callstopd_pid} };

# 20 s (scaled): generous for a loaded machine, and far under the round's 120 s.
my $gone = $t->wait_until(sub { !grep { CallstopTest::_alive_callstopd($_) } @children }, timeout => 20);
my $took = time - $t0;
ok($gone, 'every child of the dead master exits, the retry child without finishing its round')
	or do { diag('still alive: ' . join ' ', grep { CallstopTest::_alive_callstopd($_) } @children);
		kill 'KILL', grep { CallstopTest::_alive_callstopd($_) } @children };
diag(sprintf('master SIGKILLed: its children gone after %.1f s; the new callstopd %s', $took,
	$up && $up ne 'exited' ? 'started at once' : 'could not start'));

SKIP: {
	skip 'no new callstopd', 1 unless $up && $up ne 'exited';
	$fake->control(livekit => '200');
	$r = $t->api(GET => '/calls/status/' . fx_uuid(), key => $key, frontend => 'fe1');
	is($r->{status}, 404, 'the new callstopd serves through nginx') or diag($r->{body});
}

done_testing();
