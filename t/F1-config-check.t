#!/usr/bin/perl
# callstopd -t checks what bites at start or at the first request (issue 16):
# run as root with `user` set it checks as that user (a secret file root can
# read and callstop cannot fails), the database conninfo parses, listen_group
# exists, the log file can be created, the provider URLs are http(s) URLs; -T
# also connects and checks the schema.  callstopctl says "cannot read" for a
# configuration it may not read.  Long options and -V.

use v5.36;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(workers => 1, callstopd_off => 1, nginx_off => 1);
my $d = tempdir('callstop-F1-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $d;
my $conf = "$d/callstop.conf";

sub conf_of (%kv) {
	my %c = (database => $t->conninfo, listen => "$d/callstopd.sock", workers => 1, %kv);
	my $text = "[callstopd]\n" . join('', map { "$_ = $c{$_}\n" } sort grep { !/\./ && defined $c{$_} } keys %c);
	my %sect;
	for (grep { /\./ } keys %c) { my ($s, $k) = split /\./; $sect{$s}{$k} = $c{$_} }
	$text .= join '', map { my $s = $_; "[$s]\n" . join('', map { "$_ = $sect{$s}{$_}\n" } sort keys %{ $sect{$s} }) }
		sort keys %sect;
	open(my $fh, '>', $conf) or die "$conf: $!";
	print {$fh} $text;
	close $fh;
	chmod 0644, $conf;
}

sub check (@opt) {
	my $out = qx{"$t->{callstopd}" @opt -c "$conf" 2>&1};
	return ($? >> 8, $out);
}

my ($rc, $out);

# ---- options ---------------------------------------------------------------------
$out = qx{"$t->{callstopd}" -V};
like($out, qr/^callstopd \d+\.\d+/, '-V prints the version');
is(qx{"$t->{callstopd}" --version}, $out, '--version too');
like(qx{"$t->{callstopd}" --help}, qr/--test-connect/, '--help lists the long options');

# ---- what -t reads ------------------------------------------------------------------
conf_of();
($rc, $out) = check('--test');
is($rc, 0, 'a good file: --test exit 0') or diag($out);
like($out, qr/configuration file \Q$conf\E test is successful/, '... says so');

conf_of(database => 'host=localhost bogus=1');
($rc, $out) = check('-t');
is($rc, 1, 'a conninfo libpq cannot parse: -t fails') or diag($out);
like($out, qr/database: not a libpq connection string: .*"bogus"/, '... saying why');

conf_of(listen_group => 'no-such-group-f1');
($rc, $out) = check('-t');
is($rc, 1, 'listen_group naming no group: -t fails');
like($out, qr/listen_group no-such-group-f1: no such group/, '... saying so');

conf_of(log_file => "$d/no/such/dir/callstopd.log");
($rc, $out) = check('-t');
is($rc, 1, 'a log_file in a missing directory: -t fails');
like($out, qr{log_file \Q$d\E/no/such/dir/callstopd.log: cannot create it}, '... saying so');

my $secret = "$d/livekit.secret";
open(my $fh, '>', $secret) or die;
print {$fh} "s3cret\n";
close $fh;
chmod 0600, $secret;
for my $url ('ftp://lk.example.com', 'not a url') {
	conf_of('livekit.url' => $url, 'livekit.api_key' => 'k', 'livekit.api_secret_file' => $secret);
	($rc, $out) = check('-t');
	is($rc, 1, "[livekit] url = $url: -t fails") or diag($out);
	like($out, qr/\[livekit\] url = \Q$url\E: (?:not a URL|the scheme must be https)/, '... saying why');
}

# ---- -T: the database and its schema ---------------------------------------------------
conf_of();
($rc, $out) = check('-T');
is($rc, 0, '-T: connects, schema current') or diag($out);
like($out, qr/database: callstop on .*, schema at (\d+) \(this callstopd needs \1\)/, '... says so');
my $newest = $t->psql_value('SELECT max(version) FROM schema_migrations');
$t->psql("UPDATE schema_migrations SET version = -version WHERE version = $newest");
($rc, $out) = check('--test-connect');
is($rc, 1, '-T with a migration pending: fails') or diag($out);
my $at = $t->psql_value('SELECT max(version) FROM schema_migrations');
like($out, qr/database schema is at $at, this callstopd needs $newest: run `callstopctl migrate`/, '... in the words of the service');
$t->psql("UPDATE schema_migrations SET version = -version WHERE version = -$newest");
conf_of(database => 'host=127.0.0.1 port=1 dbname=x connect_timeout=2');
($rc, $out) = check('-T');
is($rc, 1, '-T with a database that does not answer: fails');
like($out, qr/database: cannot connect: /, '... saying so');
($rc, $out) = check('-t');
is($rc, 0, '... which -t alone does not try') or diag($out);

# ---- as the configured user ---------------------------------------------------------------
SKIP: {
	skip 'checking as the configured user needs root and the user callstop', 6
		if $> != 0 || !getpwnam('callstop');
	conf_of(user => 'callstop', 'livekit.url' => 'https://lk.example.com', 'livekit.api_key' => 'k',
		'livekit.api_secret_file' => $secret);
	($rc, $out) = check('-t');
	is($rc, 1, 'a secret file root can read and callstop cannot: -t as root fails') or diag($out);
	like($out, qr/checking as user callstop/, '... checking as callstop');
	like($out, qr/cannot read secret file \Q$secret\E: Permission denied/, '... saying which file');
	chown scalar(getpwnam('callstop')), -1, $secret;
	($rc, $out) = check('-t');
	is($rc, 0, 'once callstop owns it: ok') or diag($out);

	# callstopctl as callstop, a configuration it may not read
	chmod 0600, $conf;
	($rc, $out) = (0, qx{runuser -u callstop -- "$t->{callstopctl}" -c "$conf" check 2>&1});
	$rc = $? >> 8;
	is($rc, 1, 'callstopctl, a configuration its user cannot read: exit 1');
	like($out, qr/cannot read \Q$conf\E: Permission denied/, '... "cannot read", not "does not exist"');
}

done_testing;
