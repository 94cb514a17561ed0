#!/usr/bin/perl
# Issue 10, defect 13: a secret file over 4095 bytes was cut to its first 4095
# bytes and `callstopd -t` said the configuration was fine.  It is refused
# now, with the path (never the content) in the message; 4095 bytes load.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(workers => 1, callstopd_off => 1);
my $secret = $t->tmpdir . '/livekit.secret';

sub secret_of ($bytes) {
	open(my $fh, '>', $secret) or die "$secret: $!";
	print {$fh} 'S' x ($bytes - 1), "\n";
	close $fh;
	chmod 0600, $secret;
}

# callstopd -t: its exit status and what it printed.
sub check_conf () {
	my $out = qx{"$t->{callstopd}" -t -c "${\ $t->conf_file}" 2>&1};
	return ($? >> 8, $out);
}

$t->write_conf(conf => { 'livekit.url' => 'http://127.0.0.1:9', 'livekit.api_key' => 'APIkey',
	'livekit.api_secret_file' => $secret });

for my $bytes (4097, 4096 + 1024, 1024 * 1024) {
	secret_of($bytes);
	my ($rc, $out) = check_conf();
	isnt($rc, 0, "a secret file of $bytes bytes: callstopd -t fails") or diag($out);
	like($out, qr/\Q$secret\E is over 4095 bytes/, '... saying which file and why');
	unlike($out, qr/SSSS/, '... without the content');
}

secret_of(4096);   # 4095 bytes of secret and a newline: over the limit as a file
my ($rc, $out) = check_conf();
isnt($rc, 0, 'a secret file of 4096 bytes (4095 and a newline) fails') or diag($out);

secret_of(4095);
($rc, $out) = check_conf();
is($rc, 0, 'a secret file of 4095 bytes: callstopd -t says OK') or diag($out);

done_testing();
