#!/usr/bin/perl
# Logs for the people who run it (issue 16): on a stderr that is journald's
# stream (JOURNAL_STREAM = its device:inode) each line starts with its
# sd-daemon(3) priority and carries no second time stamp; a stderr that is
# not that stream keeps the time stamps; a log file callstopd creates is
# 0640 like logrotate's "create 0640" even under the unit's UMask=0077.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(workers => 1, conf => { log_file => undef }, callstopd_off => 1, nginx_off => 1);
my $stderr = $t->tmpdir . '/callstopd.stderr';

sub stderr_of () {
	open(my $fh, '<', $stderr) or return '';
	local $/;
	return <$fh>;
}

open(my $fh, '>>', $stderr) or die "$stderr: $!";
close $fh;
my @st = stat $stderr;
$t->{env}{JOURNAL_STREAM} = "$st[0]:$st[1]";
$t->start_callstopd;
ok($t->wait_until(sub { stderr_of() =~ /started/ }), 'callstopd started, logging to stderr');
my $log = stderr_of();
like($log, qr/^<6>\[info\] callstopd\[\d+\]: callstopd \S+ started/m, 'info: <6>, no time stamp');
like($log, qr/^<4>\[warn\] callstopd\[\d+\]: running as root/m, 'warn: <4>') if $> == 0;
unlike($log, qr/^\S*\d{4}-\d\d-\d\dT\d\d:/m, 'no line carries a time stamp of its own');
$t->stop_callstopd;

truncate $stderr, 0;
$t->{env}{JOURNAL_STREAM} = '1:1';    # not this stderr: a terminal, a file, a pipe
$t->start_callstopd;
ok($t->wait_until(sub { stderr_of() =~ /started/ }), 'started again, JOURNAL_STREAM naming another file');
like(stderr_of(), qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[info\] callstopd\[\d+\]: callstopd \S+ started/m,
	'... the time-stamped format');
unlike(stderr_of(), qr/^<\d>/m, '... no priority prefix');
$t->stop_callstopd;

# the log file, created under umask 077 as the unit's UMask=0077 does
my $file = $t->tmpdir . '/f2.log';
$t->write_conf(conf => { log_file => $file });
my $old = umask 077;
$t->start_callstopd;
umask $old;
ok(-f $file, 'log_file created');
is(sprintf('%04o', (stat $file)[2] & 07777), '0640', '... mode 0640, as logrotate creates it');
$t->stop_callstopd;

done_testing;
