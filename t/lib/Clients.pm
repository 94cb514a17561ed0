package Clients;

=head1 NAME

Clients - run the clients of t/clients/ (t/83, t/B4)

=head1 SYNOPSIS

    my $cl = Clients->new($t, CALLSTOP_API_KEY => $key, ...);   # their base environment
    for my $client ($cl->clients) {                             # python, node
        skip "$client->{name}: $client->{missing}", 1 if $client->{missing};
        my $summary = $cl->client_ok($client, 'cancel-retry', CALL_ID => $id);
    }
    my ($rc, $out, $err) = $cl->run_cmd([ 'node', '-e', '...' ], %env);
    my $pid = $cl->lock_row($call_id, $secs);                   # waitpid($pid, 0) later

=head1 DESCRIPTION

F<t/clients/clients.py> (Python 3 + requests) and F<t/clients/clients.mjs>
(Node 18+ and its built-in fetch) run against the real nginx, TLS verified
against its certificate (C<CALLSTOP_BASE_URL>, C<CALLSTOP_CA> and
C<NODE_EXTRA_CA_CERTS> are set here); each prints a JSON summary on its last
line and exits non-zero on a mismatch.

=cut

use v5.36;

use FindBin;
use JSON::PP ();
use POSIX qw(_exit);
use Test::More ();

my $JSON = JSON::PP->new->canonical;

sub new ($class, $t, %env) {
	my $ca = $t->tmpdir . '/nginx/cert.pem';    # the certificate nginx serves (self-signed)
	my $self = bless { t => $t, ca => $ca,
		env => { CALLSTOP_BASE_URL => $t->base_url, CALLSTOP_CA => $ca, NODE_EXTRA_CA_CERTS => $ca, %env } }, $class;
	my $python;
	for my $p ('/usr/bin/python3', 'python3') {
		my ($rc) = $self->run_cmd([ $p, '-c', 'import requests' ]);
		if ($rc == 0) { $python = $p; last }
	}
	my ($node_rc) = $self->run_cmd([ 'node', '-e', 'process.exit(typeof fetch === "function" ? 0 : 1)' ]);
	$self->{clients} = [
		{ name => 'python', cmd => [ $python // 'python3', "$FindBin::Bin/clients/clients.py" ],
			missing => $python ? undef : 'python3 with requests (Debian: python3-requests) not installed' },
		{ name => 'node', cmd => [ 'node', "$FindBin::Bin/clients/clients.mjs" ],
			missing => $node_rc == 0 ? undef : 'node with a built-in fetch (Node 18+) not installed' },
	];
	return $self;
}

sub ca ($self) { return $self->{ca} }
sub env ($self) { return %{ $self->{env} } }
sub clients ($self) { return @{ $self->{clients} } }

# Run a command; (exit code, stdout, stderr).
sub run_cmd ($self, $cmd, %env) {
	my $dir = $self->{t}->tmpdir;
	my ($out, $err) = ("$dir/client.out", "$dir/client.err");
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		# requests and fetch would honour a proxy; nginx is on loopback.
		delete @ENV{qw(http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY)};
		$ENV{NO_PROXY} = $ENV{no_proxy} = '127.0.0.1,localhost';
		@ENV{ keys %env } = values %env;
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $out) or _exit(126);
		open(STDERR, '>', $err) or _exit(126);
		exec { $cmd->[0] } @$cmd or _exit(127);
	}
	waitpid($pid, 0);
	my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my $slurp = sub ($f) { open(my $fh, '<', $f) or return ''; local $/; return scalar(<$fh>) // '' };
	return ($rc, $slurp->($out), $slurp->($err));
}

# Run one scenario of a client with the base environment and %env: it must
# exit 0 and end with a JSON summary, which is returned ({} if none).
sub client_ok ($self, $client, $scenario, %env) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($rc, $out, $err) = $self->run_cmd([ @{ $client->{cmd} }, $scenario ], $self->env, %env);
	Test::More::is($rc, 0, "$client->{name} $scenario: exit 0") or Test::More::diag("stdout:\n$out\nstderr:\n$err");
	my ($last) = reverse grep { length } split /\n/, $out;
	my $summary = eval { $JSON->decode($last // '') };
	Test::More::ok(ref $summary eq 'HASH', "$client->{name} $scenario: a JSON summary")
		or Test::More::diag("stdout:\n$out\nstderr:\n$err");
	return $summary // {};
}

# Hold a call's row lock for $secs in another session (as a slow concurrent
# transaction would); returns the holder's pid once the lock is held.
sub lock_row ($self, $id, $secs) {
	my $t = $self->{t};
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>', '/dev/null');
		exec('psql', '-X', '-q', '-d', $t->conninfo, '-c',
			"BEGIN; SELECT 1 FROM voice_call_logs WHERE id = '$id' FOR UPDATE; SELECT pg_sleep($secs); COMMIT;")
			or _exit(127);
	}
	$t->wait_until(sub { $t->psql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0 },
		timeout => 5) or die 'the row lock was not taken';
	return $pid;
}

1;
