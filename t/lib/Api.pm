package Api;

=head1 NAME

Api - the request helpers the test files share (cancel, status, termination, ...)

=head1 SYNOPSIS

    use CallstopTest;
    use Api qw(api_setup cancel status termination);

    my $t   = CallstopTest->new(...);
    my $tid = $t->tenant('acme');
    my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
    api_setup($t, key => $key);                  # frontend => 'fe1' by default

    my $r = cancel($id);                         # POST /calls/cancel {"resource_id": $id}
    my $r = cancel({ resource_id => [...], force => JSON::PP::true });
    is(termination($id)->{state}, 'done');

=head1 DESCRIPTION

One test file talks to one harness with one API key most of the time; these
helpers send the requests of that file with it, so that each file keeps its
assertions and loses its copies of the same five subs.  Nothing is exported
unless asked for.

=over

=item api_setup($t, key => $key, frontend => 'fe1')

The harness and the unified-family credentials the helpers below use (set
once per file, after the key is made).

=item api(@args)

C<< $t->api(@args, key => KEY, frontend => FRONTEND) >>: the full answer.

=item cancel($body_or_id)

C<POST /calls/cancel>: a hash or array reference is the JSON body; anything
else is one resource id (C<{"resource_id": $id}>).  The full answer.

=item status($id, $query = '')

C<GET /calls/status/$id$query>: the full answer.

=item status_of($id)

C<GET /calls/status/$id>, its decoded body.

=item termination($id)

The C<call.termination> object of C<GET /calls/status/$id>.

=item single($result)

The answer to a single-string C<resource_id>: C<results>, C<total_cancelled>
and the result's five fields at the top level (SPEC 3.1).

=item call_status($id)

C<voice_call_logs.status> of call C<$id>, read from the database.

=item credential($prefix)

A random credential of the issued format (C<$prefix> and 40 of [A-Za-z0-9]).

=item q_($s)

C<$s> as an SQL literal (C<NULL> for undef).

=item key_id($key)

The C<api_keys.id> of an issued key (or admin token of the same table).

=item from_callstopd($r, $wait = 10)

1 if callstopd logged the request of answer C<$r> (its X-Request-Id) within
C<$wait> seconds (scaled), else 0: whether callstopd or nginx answered.  Pass a
short C<$wait> to show that nginx did.

=back

=cut

use v5.36;

use Carp qw(croak);
use Exporter 'import';

our @EXPORT_OK = qw(api_setup api cancel status status_of termination single call_status credential q_ key_id
	from_callstopd);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my ($T, %CRED);
my @ALNUM = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);

sub api_setup ($t, %o) {
	$T = $t;
	%CRED = (key => $o{key}, frontend => $o{frontend} // 'fe1');
	return;
}

sub _t () { return $T // croak 'Api: call api_setup($t, key => $key) first' }

sub api (@args) { return _t()->api(@args, key => $CRED{key}, frontend => $CRED{frontend}) }

sub cancel ($what) {
	return api(POST => '/calls/cancel', json => ref $what ? $what : { resource_id => $what });
}

sub status ($id, $query = '') { return api(GET => "/calls/status/$id$query") }

sub status_of ($id) { return status($id)->{json} }

sub termination ($id) { return status_of($id)->{call}{termination} }

sub single ($res) {
	return { results => [$res], total_cancelled => $res->{cancelled_count}, %$res };
}

sub call_status ($id) { return _t()->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'") }

sub credential ($prefix) { return $prefix . join '', map { $ALNUM[rand @ALNUM] } 1 .. 40 }

sub q_ ($s) { return defined $s ? "'" . ($s =~ s/'/''/gr) . "'" : 'NULL' }

sub key_id ($k) {
	return _t()->psql_value("SELECT id FROM api_keys WHERE key_hash = sha256(convert_to(${\ q_($k)}, 'UTF8'))");
}

sub from_callstopd ($r, $wait = 10) {
	my $rid = $r->{headers}{'x-request-id'} // return 0;
	my $t = _t();
	return $t->wait_until(sub { $t->log =~ /req=\Q$rid\E\b/ }, timeout => $wait) ? 1 : 0;
}

1;
