package Background;

=head1 NAME

Background - a request the test does not wait for, and a batch row held
locked in another session (t/A2, t/B1, t/B2, t/C4, t/93)

=head1 SYNOPSIS

    use Background qw(bg bg_result hold_batch release);

    my $holder = hold_batch($t, $batch);       # its row locked, FOR UPDATE, until released
    my $bg = bg($t, sub { $t->request(POST => "/batch/batch-cancel/$job", headers => \%h) });
    ...                                        # the cancel waits on the row; kill its worker, ...
    release($t, $holder);
    my $r = bg_result($bg);                    # {status, body, headers}

=head1 DESCRIPTION

C<bg> runs the code (a C<request> or C<api> call) in a child process and
returns at once; C<bg_result> waits for the child and returns the answer's
status, body and headers (status 0 and the error as body if the code died).

C<hold_batch> holds the batch's row in a transaction of its own (for $secs,
default 120) and returns once it is held, so that a cancel of the batch
waits inside its transaction; C<release> ends every such holder
(C<pg_terminate_backend>) and reaps the one given.

=cut

use v5.36;

use Exporter 'import';
use JSON::PP ();
use POSIX qw(_exit);

our @EXPORT_OK = qw(bg bg_result hold_batch release);

my $JSON = JSON::PP->new->canonical;
my $n = 0;

sub bg ($t, $code) {
	my $file = $t->tmpdir . "/bg-$$-" . ++$n . '.json';
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $r = eval { $code->() } // { status => 0, body => $@ };
		open my $fh, '>', $file or _exit(1);
		print {$fh} $JSON->encode({ status => $r->{status}, body => $r->{body}, headers => $r->{headers} // {} });
		close $fh;
		_exit(0);
	}
	return { pid => $pid, file => $file };
}

sub bg_result ($bg) {
	waitpid($bg->{pid}, 0);
	my $text = CallstopTest::_slurp($bg->{file});
	return length $text ? $JSON->decode($text) : { status => 0, body => 'no answer recorded', headers => {} };
}

sub hold_batch ($t, $batch, $secs = 120) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval { $t->psql("BEGIN; SELECT 1 FROM voice_call_batches WHERE id = '$batch' FOR UPDATE;"
			. " SELECT pg_sleep($secs); COMMIT;") };
		_exit(0);
	}
	$t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'
		AND state = 'active' AND pid <> pg_backend_pid()}) == 1 }, timeout => 60) or die 'lock holder did not start';
	return $pid;
}

sub release ($t, $holder) {
	$t->psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'
		AND pid <> pg_backend_pid()});
	waitpid($holder, 0);
	return;
}

1;
