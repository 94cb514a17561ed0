package Dialer;

=head1 NAME

Dialer - a dialer simulator, and a long-lived psql session, for race tests

=head1 SYNOPSIS

    use Dialer;

    my $d = Dialer->spawn(t => $t, batch => $uuid, name => 'd1', iterations => 300);
    ...
    my $rc = $d->wait(timeout => 10);    # psql's exit code (0 = clean), or undef after a kill
    my ($batch, @dialers) = Dialer->race(t => $t, session => $s, tenant => $tid, job => 'batch-r1',
                                         entries => 200, dialers => 3, name => 'r1');   # first claim made

    my $s = Dialer::Session->new($t);
    my $rows = $s->query('SELECT clock_timestamp(), 1');   # [[...], ...]
    $s->close;

=head1 DESCRIPTION

A dialer is a forked Perl process that pipes SQL to one long-running
C<psql -X -q> process, in a tight loop, going through the dialer functions of
F<sql/002_dialer.sql> only, one transaction per call, as SPEC 5 describes:

    claim up to 2 entries            callstop_claim_entries(batch, name, 2)
    nothing claimed: quit            (batch no longer active, or nothing pending)
    start the first, report ringing  callstop_start_call / callstop_report_call
    start the second, report running

The loop is bounded (C<iterations>, C<max_seconds>); the dialer also stops by
itself once a claim returns nothing.  psql runs with ON_ERROR_STOP, so its
exit code tells whether any statement failed.

=cut

use v5.36;

use IPC::Open2 qw(open2);
use POSIX qw(_exit WNOHANG);
use Time::HiRes qw(time sleep);
use CallstopTest ();

my $BLOCK = <<'SQL';
SELECT count(*) AS n, coalesce(min(entry_id), 0) AS e1, coalesce(max(entry_id), 0) AS e2 FROM callstop_claim_entries(:'b', :'w', 2) \gset
SELECT :n = 0 AS done \gset
\if :done
\q
\endif
SELECT coalesce(callstop_start_call(:e1, :'w', 'agent-' || :'w', 'room-' || :e1, NULL)::text, '') AS c1 \gset
SELECT callstop_report_call(nullif(:'c1', '')::uuid, 'ringing') AS r1 \gset
SELECT coalesce(callstop_start_call(:e2, :'w', 'agent-' || :'w', 'room-' || :e2, NULL)::text, '') AS c2 \gset
SELECT callstop_report_call(nullif(:'c2', '')::uuid, 'running') AS r2 \gset
SQL

sub spawn ($class, %o) {
	my $t = $o{t};
	my @cmd = (($t->{psql} // "psql"), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', "b=$o{batch}", '-v', "w=$o{name}",
		'-d', $t->conninfo);
	my $errfile = $t->tmpdir . "/dialer-$o{name}.err";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $rc = 1;
		eval {
			$SIG{PIPE} = 'IGNORE';
			$SIG{$_} = 'DEFAULT' for qw(TERM INT HUP);
			open(STDIN, '<', '/dev/null') or die "stdin: $!";
			open(STDOUT, '>', '/dev/null') or die "stdout: $!";
			open(STDERR, '>', $errfile) or die "stderr: $!";
			open(my $psql, '|-', @cmd) or die "psql: $!";
			my $deadline = time + ($o{max_seconds} // 20);
			for (1 .. $o{iterations} // 1000) {
				last if time > $deadline;
				print {$psql} $BLOCK or last;    # psql quit (\q): EPIPE
			}
			close $psql;    # waits for psql
			$rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
			1;
		} or print STDERR $@;
		_exit($rc);
	}
	return bless { pid => $pid, name => $o{name}, errfile => $errfile }, $class;
}

sub pid ($self) { return $self->{pid} }

# Wait for the dialer; kill it after timeout seconds (scaled, as every
# deadline of the harness).  Returns its exit code
# (psql's), or undef when it had to be killed.
sub wait ($self, %o) {
	my $deadline = time + CallstopTest::scaled($o{timeout} // 10);
	while (time < $deadline) {
		my $r = waitpid($self->{pid}, WNOHANG);
		if ($r == $self->{pid}) {
			return $? & 127 ? 128 + ($? & 127) : $? >> 8;
		}
		return undef if $r < 0;
		sleep 0.01;
	}
	kill 'TERM', $self->{pid};
	waitpid($self->{pid}, 0);
	return undef;
}

sub errors ($self) {
	open(my $fh, '<', $self->{errfile}) or return '';
	local $/;
	return <$fh> // '';
}

# A round of a race test (t/60, t/D1): a batch of $o{entries} entries made
# through the session, $o{dialers} dialers ("NAME-d1", ...) on it; returns
# (batch uuid, dialers) once their first claim is made (the batch is no
# longer pending), or after scaled(5) s.
sub race ($class, %o) {
	my ($t, $s) = @o{qw(t session)};
	my $b = $s->value("INSERT INTO voice_call_batches (tenant_id, job_id) VALUES ($o{tenant}, '$o{job}') RETURNING id");
	$s->query("INSERT INTO voice_call_batch_entries (batch_id, to_number)
		SELECT '$b', '+1555' || lpad(g::text, 7, '0') FROM generate_series(1, $o{entries}) g");
	my @dialers = map { $class->spawn(t => $t, batch => $b, name => "$o{name}-d$_", iterations => $o{entries},
		max_seconds => 20) } 1 .. $o{dialers};
	my $t0 = time;
	sleep 0.001 until $s->value("SELECT status FROM voice_call_batches WHERE id = '$b'") ne 'pending'
		|| time - $t0 > CallstopTest::scaled(5);
	return ($b, @dialers);
}

package Dialer::Session;

# One psql connection kept open: queries cost a round trip, not a process.

sub new ($class, $t) {
	my $pid = IPC::Open2::open2(my $out, my $in, ($t->{psql} // "psql"), '-X', '-q', '-At', '-F', "\t", '-v', 'ON_ERROR_STOP=1', '-d',
		$t->conninfo);
	return bless { pid => $pid, out => $out, in => $in }, $class;
}

sub query ($self, $sql) {
	my ($in, $out) = @{$self}{qw(in out)};
	$sql =~ s/;\s*$//;
	print {$in} "$sql;\n\\echo __END__\n" or die "psql session: $!";
	$in->flush;
	my @rows;
	while (1) {
		my $line = <$out>;
		die "psql session ended (SQL: $sql)" unless defined $line;
		chomp $line;
		last if $line eq '__END__';
		push @rows, [ split /\t/, $line, -1 ];
	}
	return \@rows;
}

sub value ($self, $sql) {
	my $rows = $self->query($sql);
	return @$rows ? $rows->[0][0] : undef;
}

sub close ($self) {
	return unless $self->{pid};
	close $self->{in};
	close $self->{out};
	waitpid($self->{pid}, 0);
	delete $self->{pid};
	return;
}

sub DESTROY ($self) { $self->close }

1;
