package FakeReceiver;

=head1 NAME

FakeReceiver - the webhook receiver (t/fake/receiver.mjs) of the t/E*.t tests

=head1 SYNOPSIS

    my $rcv = FakeReceiver->new;                 # skip_all without node / node_modules
    $rcv->control(secrets => { a => $secret }, status => [500, 204], delay_ms => 20);
    my @r = $rcv->requests;                      # [{id, body, verified => {a => 1}, status, ...}]
    $rcv->wait_requests(3, timeout => 30);
    $rcv->stop; $rcv->start;                     # the same port again

=head1 DESCRIPTION

Every delivery is verified by the official C<standardwebhooks> npm package
against each secret given with C<control(secrets =E<gt> ...)>.  C<url($name)> is
the endpoint URL C</hook/$name>.

=cut

use v5.36;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG _exit);
use Test::More ();
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;
my $SRCDIR = $ENV{CALLSTOP_SRCDIR}
	// abs_path(File::Spec->catdir(dirname(__FILE__), File::Spec->updir, File::Spec->updir));

sub new ($class, %o) {
	my ($node) = grep { -x } map { "$_/node" } split /:/, $ENV{PATH} // '';
	$node = $ENV{CALLSTOP_NODE} // $node;
	my $why = !$node ? 'node not found (install nodejs)'
		: !-d "$SRCDIR/t/fake/node_modules/standardwebhooks"
		? 't/fake/node_modules missing (run: npm ci --prefix t/fake --no-audit --no-fund)' : undef;
	if ($why) {
		croak "webhook receiver: $why" if $ENV{CI} || $ENV{CALLSTOP_REQUIRE_FAKE};
		Test::More::plan(skip_all => "webhook receiver: $why");
	}
	my $self = bless { owner => $$, node => $node, script => "$SRCDIR/t/fake/receiver.mjs", port => 0,
		dir => tempdir('receiver-XXXXXX', TMPDIR => 1, CLEANUP => 1),
		http => HTTP::Tiny->new(timeout => 30) }, $class;
	$self->start;
	return $self;
}

sub port ($self) { return $self->{port} }
sub url ($self, $name = 'a') { return "http://127.0.0.1:$self->{port}/hook/$name" }

sub start ($self) {
	croak 'receiver already running' if $self->{pid};
	my $out = "$self->{dir}/stdout";
	unlink $out;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $out);
		open(STDERR, '>>', "$self->{dir}/stderr");
		$ENV{RECEIVER_CONTROL} = $JSON->encode($self->{ctl} // {});
		exec { $self->{node} } $self->{node}, $self->{script}, $self->{port} or _exit(127);
	}
	$self->{pid} = $pid;
	my $deadline = time + 20;
	while (1) {
		if (open(my $fh, '<', $out)) {
			my $line = <$fh>;
			if (defined $line && $line =~ /^(\d+)\n/) {
				$self->{port} = $1;
				last;
			}
		}
		if (waitpid($pid, WNOHANG) == $pid || time > $deadline) {
			delete $self->{pid};
			kill 'KILL', $pid;
			croak 'webhook receiver did not start';
		}
		sleep 0.05;
	}
	return $self->{port};
}

sub stop ($self) {
	my $pid = delete $self->{pid} or return;
	kill 'TERM', $pid;
	my $deadline = time + 5;
	while (waitpid($pid, WNOHANG) != $pid) {
		if (time > $deadline) {
			kill 'KILL', $pid;
			waitpid($pid, 0);
			last;
		}
		sleep 0.02;
	}
	return;
}

sub _call ($self, $method, $path, $body = undef) {
	my $res = $self->{http}->request($method, "http://127.0.0.1:$self->{port}$path",
		defined $body ? { headers => { 'Content-Type' => 'application/json' }, content => $JSON->encode($body) }
		: {});
	croak "receiver: $method $path: $res->{status} $res->{content}" unless $res->{success};
	return $JSON->decode($res->{content});
}

# What control() set is given again to a restarted receiver.
sub control ($self, %c) {
	$self->{ctl} = { %{ $self->{ctl} // {} }, %c };
	return $self->_call(POST => '/_control', \%c);
}

sub reset ($self) {
	delete @{ $self->{ctl} // {} }{qw(status delay_ms)};
	return $self->_call(POST => '/_reset', {});
}

sub requests ($self) {
	my $r = $self->_call(GET => '/_requests');
	return wantarray ? @$r : $r;
}

# Wait until at least $n requests were answered with a 2xx (or, with
# any => 1, answered at all); returns them all.
sub wait_requests ($self, $n, %o) {
	my $deadline = time + ($o{timeout} // 30);
	while (1) {
		my @r = $self->requests;
		my $got = grep { defined $_->{status} && ($o{any} || $_->{status} < 300) } @r;
		return @r if $got >= $n || time > $deadline;
		sleep 0.1;
	}
}

sub DESTROY ($self) {
	$self->stop if $self->{pid} && $self->{owner} == $$;
	return;
}

1;
