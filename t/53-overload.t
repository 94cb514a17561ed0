#!/usr/bin/perl
# Overload (issue 10, defect 7): more requests at once than callstopd's
# workers and listen backlog hold.  Past the backlog, connect() to the socket
# fails at once and nginx could only answer 502 "callstopd is not reachable",
# the answer that otherwise means a worker died mid-request.  nginx passes at
# most CALLSTOPD_CONNS (here listen_backlog, as nginx/callstop.conf.in says)
# requests to callstopd at once and answers the others
# 503 with Retry-After in the family's body.  Bounded: a few hundred requests
# from one curl on 127.0.0.1, a small backlog and two workers.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use JSON::PP;
use Time::HiRes qw(time);

my ($workers, $backlog) = (2, 4);
my $t = CallstopTest->new(workers => $workers, conf => { listen_backlog => $backlog },
	nginx => { CALLSTOPD_CONNS => $backlog });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $call = fx_call($t, $tid, status => 'running');

system('curl --version >/dev/null 2>&1') == 0 or plan skip_all => 'curl not found';
is($t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1')->{status}, 200, 'status works');

# One curl, N transfers in parallel, each its own HTTP/1.1 connection.
sub burst ($n, $path, %h) {
	my $dir = $t->tmpdir . '/burst-' . ++$main::burst;
	mkdir $dir or die "$dir: $!";
	open(my $cfg, '>', "$dir/curl.cfg") or die $!;
	for my $i (1 .. $n) {
		print {$cfg} qq{url = "} . $t->url($path) . qq{"\noutput = "$dir/$i.body"\n};
	}
	close $cfg;
	my @hdr = map { ('-H', "$_: $h{$_}") } sort keys %h;
	my $t0 = time;
	open(my $fh, '-|', 'curl', '-sk', '--no-progress-meter', '--http1.1', '-Z', '--parallel-immediate', '--parallel-max', $n,
		'--max-time', '60', @hdr, '-w', '%{http_code}\t%header{retry-after}\t%{filename_effective}\n',
		'-K', "$dir/curl.cfg") or die "curl: $!";
	my @res;
	while (my $line = <$fh>) {
		chomp $line;
		my ($code, $ra, $file) = split /\t/, $line;
		my $body = CallstopTest::_slurp($file) // '';
		push @res, { status => $code, retry_after => $ra, json => eval { decode_json($body) }, body => $body };
	}
	close $fh;
	return (\@res, time - $t0);
}

sub count ($res) {
	my %n;
	$n{ $_->{status} }++ for @$res;
	return \%n;
}

# The unified family first, then the other three (each its own 503 body).
my ($res, $secs) = burst(200, "/calls/status/$call", 'X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');
my $n = count($res);
diag(sprintf '200 requests at once: %s in %.2f s', join(', ', map { "$_ x $n->{$_}" } sort keys %$n), $secs);
is(scalar @$res, 200, 'every request got an answer');
is_deeply([ grep { $_ != 200 && $_ != 503 } sort keys %$n ], [], 'each 200 or 503: no 502') or diag(explain($n));
ok(($n->{200} // 0) >= $workers, 'the workers served some');
my @busy = grep { $_->{status} == 503 } @$res;
SKIP: {
	skip 'no request was over the limit this time', 3 unless @busy;
	is_deeply([ grep { ($_->{retry_after} // '') ne '1' } @busy ], [], '503 with Retry-After: 1');
	is($busy[0]{json}{error}{code}, 'overloaded', 'the unified body') or diag($busy[0]{body});
	like($busy[0]{json}{request_id} // '', qr/^[0-9a-f]{32}$/, '... with the request id');
}

($res) = burst(100, "/api/v1/calls/$call", 'x-api-key' => $key);
$n = count($res);
is_deeply([ grep { $_ != 200 && $_ != 503 } sort keys %$n ], [], 'Heppu-style: 200 or 503') or diag(explain($n));
my ($h503) = grep { $_->{status} == 503 } @$res;
is_deeply($h503->{json}, { error => { message => 'Service busy; nothing was changed. Retry.', code => 503 } },
	'... the Heppu-style body') if $h503;

# callstopd gone: still 502 (nothing reachable), not the overload 503.
$t->stop_callstopd;
my $r = $t->api(GET => "/calls/status/$call", key => $key, frontend => 'fe1');
is($r->{status}, 502, 'callstopd down: 502 as before');

done_testing();
