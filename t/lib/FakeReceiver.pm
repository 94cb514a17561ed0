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

use parent 'NodeFake';
use JSON::PP;
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;

sub new ($class, %o) {
	my $self = $class->_new(what => 'webhook receiver', script => 'receiver.mjs', module => 'standardwebhooks',
		timeout => 20, keep_alive => 0);
	$self->start;
	return $self;
}

sub url ($self, $name = 'a') { return "http://127.0.0.1:$self->{port}/hook/$name" }

# What control() set is given again to a restarted receiver.
sub start ($self) { return $self->_start(RECEIVER_CONTROL => $JSON->encode($self->{ctl} // {})) }

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

1;
