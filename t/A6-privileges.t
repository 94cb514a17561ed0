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

# (a generous statement_timeout: a cancel below waits on a row lock for a while)
my $t = CallstopTest->new(workers => 2, conf => { user => 'callstop', database_statement_timeout_ms => 120000 });
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
# The master says "log file reopened" once it has signalled every child, and
# from that line on no process writes to the old file - not even a worker
# that was in the middle of a request when USR1 came (it defers the signal
# until the request is done): its access line goes to the new file.  A cancel
# waiting on a row lock held by another session is that request.
my $locked = fx_call($t, $tid, status => 'running');
my $holder = fork // die "fork: $!";
if ($holder == 0) {
	eval { $t->psql("BEGIN; SELECT 1 FROM voice_call_logs WHERE id = '$locked' FOR UPDATE; SELECT pg_sleep(600); COMMIT;") };
	_exit(0);
}
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%'
	AND state = 'active' AND pid <> pg_backend_pid()}) == 1 }, timeout => 10), 'a session holds a call row');
my $load = $t->load_start(procs => 1, requests => 1, duration => CallstopTest::scaled(60), request => sub ($p, $n) {
	[ POST => '/calls/cancel', headers => { 'X-API-Key' => $key, 'X-Frontend-ID' => 'fe1' }, json => { resource_id => $locked } ];
});
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}) == 1 },
	timeout => 10), 'a cancel of it is in hand, waiting on the row');

my $file = $t->tmpdir . '/callstopd.log';
rename $file, "$file.1" or die "rename: $!";
kill 'USR1', $t->callstopd_pid;
ok($t->wait_until(sub { -e $file && CallstopTest::_slurp($file) =~ /log file reopened/ }), 'USR1 reopens the log file');
is((stat $file)[4], $uid, '... created by callstop');
my $old_size = -s "$file.1";
$t->psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()});
waitpid($holder, 0);
my $res = $t->load_wait($load);
is_deeply([ $res->{total}, $res->{failed} ], [ 1, [] ], 'the cancel in hand is answered 200') or diag(explain($res));
ok($t->wait_until(sub { CallstopTest::_slurp($file) =~ /route=calls\.cancel status=200/ }),
	'... and its access line goes to the new file, though the request began before USR1');
# Both workers (nginx spreads the requests) and the retry child's idle loop.
for (1 .. 6) {
	$r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
	is($r->{status}, 200, 'a status request after the reopen') or diag($r->{body});
}
ok($t->wait_until(sub { (() = CallstopTest::_slurp($file) =~ /route=calls\.status status=200/g) == 6 }),
	'... the workers write there too');
is(-s "$file.1", $old_size, 'the old file gets no line after the master said it reopened')
	or diag(substr(CallstopTest::_slurp("$file.1"), $old_size));

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
