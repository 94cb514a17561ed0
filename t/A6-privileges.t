#!/usr/bin/perl
# Privileges (SPEC 7: callstopd runs as an unprivileged callstop user).
# Started as root with user = callstop, it binds the socket, gives it (and the
# log file) to that user, and the master itself drops to it (groups, gid,
# uid, all of real, effective and saved) before it forks: every process runs
# as callstop without capabilities, and still serves, reloads and reopens its
# log.  As root without user it warns; started unprivileged it just runs.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use POSIX qw(_exit WNOHANG);

plan skip_all => 'the privilege drop needs the tests to run as root' if $> != 0;

my $t = CallstopTest->new(workers => 2, conf => { user => 'callstop' });
my @pw = getpwnam('callstop') or BAIL_OUT('the harness creates the callstop user as root');
my ($uid, $gid) = @pw[2, 3];
my @groups = sort { $a <=> $b } split ' ', `id -G callstop`;

my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');

sub runs_as_callstop ($pid, $what) {
	subtest "$what (pid $pid) runs as callstop" => sub {
		my $ids = $t->proc_ids($pid);
		ok($ids, 'alive') or return;
		is_deeply($ids->{uid}, [ ($uid) x 4 ], 'Uid: real, effective, saved, fs');
		is_deeply($ids->{gid}, [ ($gid) x 4 ], 'Gid: real, effective, saved, fs');
		is_deeply([ sort { $a <=> $b } @{ $ids->{groups} } ], \@groups, 'Groups: those of callstop');
		my $status = CallstopTest::_slurp("/proc/$pid/status");
		like($status, qr/^CapEff:\s+0+$/m, 'no effective capabilities');
		like($status, qr/^CapPrm:\s+0+$/m, 'no permitted capabilities: root cannot come back');
	};
}

my $log = $t->log;
like($log, qr/running as user callstop \(uid $uid, gid $gid\)/, 'the drop is logged');
unlike($log, qr/running as root/, 'no root warning');
runs_as_callstop($t->callstopd_pid, 'the master');
my @children = $t->worker_pids;
is(scalar @children, 3, 'two workers and the retry child');
runs_as_callstop($_, 'child') for @children;

my $sock = $t->tmpdir . '/callstopd.sock';
is((stat $sock)[4], $uid, 'the socket belongs to callstop');
is(sprintf('%04o', (stat $sock)[2] & 07777), '0660', '... mode 0660');
is((stat($t->tmpdir . '/callstopd.log'))[4], $uid, 'the log file belongs to callstop');

# It serves.
my $call = fx_call($t, $tid, status => 'running');
my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $call });
is($r->{status}, 200, 'a cancel is served') or diag($r->{body});
is($t->status_json->{total_processes}, 2, 'the status page is served');

# USR1 after logrotate's rename: the unprivileged master creates the new file.
my $file = $t->tmpdir . '/callstopd.log';
rename $file, "$file.1" or die "rename: $!";
kill 'USR1', $t->callstopd_pid;
ok($t->wait_until(sub { -e $file && CallstopTest::_slurp($file) =~ /log file reopened/ }), 'USR1 reopens the log file');
is((stat $file)[4], $uid, '... created by callstop');
$r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
ok($t->wait_until(sub { CallstopTest::_slurp($file) =~ /route=calls\.status status=200/ }), '... the workers write there too');

# HUP: the new generation is unprivileged too.
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { CallstopTest::_slurp($file) =~ /reload: generation 1/ }, timeout => 10), 'reload');
ok($t->wait_until(sub { !grep { !CallstopTest::_gone($_) } @children }, timeout => 15), '... the old workers gone');
runs_as_callstop($_, 'new child') for $t->worker_pids;
$t->write_conf(conf => { user => 'root' });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { CallstopTest::_slurp($file) =~ /reload: user changed, which needs a restart; keeping the running value/ },
	timeout => 10), 'user cannot be changed by a reload');
runs_as_callstop($t->callstopd_pid, 'the master, still');

# As root without user: it runs, with a warning.
$t->restart_callstopd(conf => { user => undef });
like($t->log, qr/running as root: set user/, 'root without user: a warning');
is($t->proc_ids(($t->worker_pids)[0])->{uid}[1], 0, '... and it runs as root');

# Started as callstop: it just runs (user is ignored, with a note).
my $dir = $t->tmpdir;
my $conf = CallstopTest::_slurp($t->conf_file);
$conf =~ s/^listen = .*$/listen = $dir\/unpriv.sock/m;
$conf =~ s/^log_file = .*$/log_file = $dir\/unpriv.log/m;
$conf =~ s/^\[callstopd\]\n/[callstopd]\nuser = callstop\n/m;
open(my $fh, '>', "$dir/unpriv.conf") or die $!;
print {$fh} $conf;
close $fh;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
	open(STDOUT, '>>', "$dir/unpriv.stderr");
	open(STDERR, '>&', \*STDOUT);
	exec('setpriv', "--reuid=$uid", "--regid=$gid", '--init-groups', "$ENV{CALLSTOP_BUILDDIR}/src/callstopd",
		'-c', "$dir/unpriv.conf") or _exit(127);
}
ok($t->wait_until(sub { CallstopTest::_slurp("$dir/unpriv.log") =~ /retry child \(pid \d+\) started/ }, timeout => 10),
	'started as callstop, it runs') or diag(CallstopTest::_slurp("$dir/unpriv.stderr"));
like(CallstopTest::_slurp("$dir/unpriv.log"), qr/user = callstop: not started as root, running as uid $uid/,
	'... noting that user does not apply');
runs_as_callstop($pid, 'the unprivileged master');
kill 'TERM', $pid;
ok($t->wait_until(sub { waitpid($pid, WNOHANG) == $pid }, timeout => 10), '... and stops');

done_testing();
