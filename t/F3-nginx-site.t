#!/usr/bin/perl
# The nginx site for the people who run it (issue 16): every location passes
# to one `upstream callstop`, the access log carries the request id that
# clients get as X-Request-Id and callstopd logs as req=, GET /callstop-ready
# is an internal location; and callstopd takes a socket passed by systemd
# (what the shipped callstop.socket does), here from systemd-socket-activate.

use v5.36;
use Test::More;
use POSIX qw(WNOHANG);
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(workers => 1, callstopd_off => 1);
my $site = CallstopTest::_slurp($t->tmpdir . '/nginx/callstop.conf');
my @pass = $site =~ /^\s*fastcgi_pass\s+([^;]+);/mg;
# one fastcgi_pass for each location that serves a path (not the named error
# pages, not the internal ones of errors nginx raises itself)
my @served = grep { !/^@/ && !m{^/_callstop_error/} } $site =~ /^\s*location\s+(?:[=~]\s+)?(\S+)\s*\{/mg;
ok(@served >= 5 && @pass == @served && !grep({ $_ ne 'callstop' } @pass),
	'every location: fastcgi_pass callstop (' . @pass . ' of ' . @served . ' locations)');
like($site, qr/^upstream callstop \{\n    server unix:\S+callstopd\.sock;\n\}/m, 'one upstream callstop, its server');

my $activate = CallstopTest::_which('systemd-socket-activate');
SKIP: {
	skip 'systemd-socket-activate not installed (package systemd)', 5 unless $activate;
	my $listen = $t->tmpdir . '/callstopd.sock';
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>>', $t->tmpdir . '/callstopd.stderr') or die;
		open(STDERR, '>&', \*STDOUT) or die;
		exec $activate, '-l', $listen, $t->{callstopd}, '-c', $t->conf_file or die "exec: $!";
	}
	ok($t->wait_until(sub { -S $listen }), 'systemd-socket-activate holds the socket');
	my $r = $t->wait_until(sub {
		my $r = $t->request(GET => '/callstop-ready');
		$r->{status} == 200 && $r;
	}, timeout => 20);
	is($r && $r->{status}, 200, 'the first connection started callstopd, which took the socket: ready')
		or diag($t->log);
	like($t->log, qr/started: 1 workers on the socket passed by systemd/, '... logged');
	my $rid = $r->{headers}{'x-request-id'};
	ok($t->wait_until(sub { $t->access_log =~ /"GET \/callstop-ready HTTP\/[\d.]+" 200 .*request_id=\Q$rid\E /m }),
		'access log: the request id clients get') or diag($t->access_log);
	like($t->log, qr/req=\Q$rid\E .*"GET \/callstop-ready"/, '... and callstopd logs');
	kill 'QUIT', $pid;
	$t->wait_until(sub { waitpid($pid, WNOHANG) == $pid }, timeout => 15) or kill 'KILL', $pid;
}

done_testing;
