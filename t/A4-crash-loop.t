#!/usr/bin/perl
# Crash-loop backoff (SPEC 7): workers that die at start-up make the master
# back off (100 ms doubling up to 5 s per slot), not fork as fast as it can;
# each death is logged with its exit status and uptime; the master stays up
# and serves again once the cause is gone (here a reload).  The crash is the
# test-only key test_crash_on_start.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Time::HiRes qw(sleep);
use Time::Local qw(timegm);

plan skip_all => 'needs a callstopd built with --enable-test-hooks' unless CallstopTest->test_hooks;

my $t = CallstopTest->new(workers => 2, conf => { test_crash_on_start => 'yes' });
my $master = $t->callstopd_pid;

# Seconds of a log line's time stamp.
sub stamp ($line) {
	my ($y, $mo, $d, $h, $mi, $s, $ms) = $line =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z/ or return undef;
	return timegm($s, $mi, $h, $d, $mo - 1, $y) + $ms / 1000;
}

sleep 11;
my @lines = split /\n/, $t->log;
my @starts = grep { /worker \d \(pid \d+\) started/ } @lines;
my $t0 = stamp($starts[0]);
my $forks = grep { stamp($_) - $t0 <= 10 } @starts;
diag("crash loop: $forks worker forks in 10 s (2 workers)");
cmp_ok($forks, '>=', 6, 'the master keeps trying');
cmp_ok($forks, '<=', 20, "... but backs off: $forks forks in 10 s, not thousands");

like($t->log, qr/worker \d: test_crash_on_start is set \(TEST ONLY\): exiting/, 'the workers die at start');
like($t->log, qr/worker \d \(pid \d+\) exited with status 1 after 0\.\ds/, 'each death logged with status and uptime');
my @delays = $t->log =~ /worker \d: exited less than 1 s after its start, respawning in (\d+) ms \(crash-loop backoff\)/g;
ok(@delays >= 6, 'backoff logged');
my ($max) = sort { $b <=> $a } @delays;
cmp_ok($max, '>=', 3200, "... the delay grows ($max ms)");
ok(!grep({ $_ > 5000 } @delays), '... up to 5 s');
ok(kill(0, $master), 'the master is up');
my @retry = $t->log =~ /retry child \(pid \d+\) started/g;
is(scalar @retry, 1, 'the retry child is not affected');

# Without the fault the workers come back at once, with a reload.
$t->write_conf(conf => { test_crash_on_start => 'no' });
kill 'HUP', $master;
ok($t->wait_until(sub { $t->log =~ /reload: generation 1/ }, timeout => 10), 'reload without the fault');
sleep 1.5;
my @pids = $t->worker_pids;
is(scalar @pids, 3, 'two workers and the retry child run');
sleep 1;
is_deeply([ $t->worker_pids ], \@pids, '... and stay up');
my $st = $t->status_json;
is($st->{total_processes}, 2, 'the status page sees both workers');
cmp_ok($st->{respawns}, '>=', 4, 'respawns counted the crash loop');

done_testing();
