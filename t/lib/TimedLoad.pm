package TimedLoad;
# A load whose every request is recorded with its start and end time, so that
# a test can sort the answers into the phases of a fault (before, during,
# after) it injected at known times.  Bounded in clients and time.
#
#   my $load = TimedLoad::start($t, procs => 4, duration => 10,
#       request => sub ($proc, $n) { [ GET => '/calls/status/x', key => ..., frontend => ... ] });
#   ... inject faults, note time() ...
#   my @rows = TimedLoad::wait($load);   # {t0, t1, status, retry_after, what, body, tag}, by t0
#
# A request may end in "tag => $x": not sent, recorded as the row's tag.
#
# Each request is made with $t->api(@$req, timeout => 60), so a request that
# hangs shows as a long one, not as a lost one.

use v5.36;
use JSON::PP;
use POSIX qw(_exit);
use Time::HiRes qw(time sleep);

sub start ($t, %o) {
	my $procs = $o{procs} // 4;
	my $duration = $o{duration} // 5;
	my $make = $o{request} or die 'TimedLoad::start: request => sub required';
	my $dir = $t->tmpdir;
	my $id = ++$TimedLoad::seq;
	my %load = (pids => [], files => [], stop => "$dir/tload-$id.stop");
	for my $k (1 .. $procs) {
		my $file = "$dir/tload-$id-$k.json";
		push @{ $load{files} }, $file;
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $rc = 0;
			eval {
				# its own HTTP client: the parent's keep-alive
				# connection must not be shared by the children
				$t->{http} = $t->_http_client;
				open(my $fh, '>', $file) or die "$file: $!";
				$fh->autoflush(1);
				my $end = time + $duration;
				my $n = 0;
				while (time < $end && !-e $load{stop}) {
					my ($tag, @req) = (undef, @{ $make->($k, $n++) });
					(undef, $tag) = splice(@req, -2) if @req >= 2 && $req[-2] eq 'tag';
					my $t0 = time;
					my $r = $t->api(@req, timeout => 60);
					print {$fh} encode_json({ t0 => $t0, t1 => time, status => $r->{status} + 0, tag => $tag,
						retry_after => $r->{headers}{'retry-after'}, what => "$req[0] $req[1]",
						body => substr($r->{body} // '', 0, 300) }), "\n";
					sleep($o{pause}) if $o{pause};
				}
				close $fh;
				1;
			} or do { print STDERR "TimedLoad child: $@"; $rc = 1 };
			_exit($rc);
		}
		push @{ $load{pids} }, $pid;
	}
	return \%load;
}

sub wait ($load, %o) {
	if ($o{stop}) {
		my $sf;
		close $sf if open($sf, '>', $load->{stop});
	}
	waitpid($_, 0) for @{ $load->{pids} };
	my @rows;
	for my $file (@{ $load->{files} }) {
		open(my $fh, '<', $file) or next;
		push @rows, map { decode_json($_) } grep { /\S/ } <$fh>;
	}
	return sort { $a->{t0} <=> $b->{t0} } @rows;
}

# Counts by status of a list of rows: "200 x 12, 503 x 3".
sub summary (@rows) {
	my %n;
	$n{ $_->{status} }++ for @rows;
	return join(', ', map { "$_ x $n{$_}" } sort keys %n) || 'none';
}

# The rows a database fault may not produce (SPEC 3: a request either ran,
# 200, or changed nothing, 503 with Retry-After: 1), as "status what: body"
# lines; empty when every row is one of those.
sub unexpected (@rows) {
	return map { "$_->{status} $_->{what}: $_->{body}" }
		grep { !($_->{status} == 200 || ($_->{status} == 503 && ($_->{retry_after} // '') eq '1')) } @rows;
}

1;
