package FakeProviders;

=head1 NAME

FakeProviders - the fake LiveKit + OpenAI server (t/fake/providers.mjs) for the tests

=head1 SYNOPSIS

    use CallstopTest;
    use FakeProviders;

    # skip_all (a failure under CI) if node or t/fake/node_modules is missing
    my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 200 },
                                            env => { CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS => 3000 });
    # or by hand:
    my $fake = FakeProviders->new;
    my $t = CallstopTest->new(callstopd_off => 1);
    $t->write_conf(conf => { %{ $fake->conf($t->tmpdir) }, 'outbox.poll_ms' => 200 });
    $t->start_callstopd;
    $fake->control(livekit => '500', openai => [qw(500 200)], delay_ms => 50);
    my @lk = $fake->requests('livekit');          # [{path, headers, body, auth, status, ...}]
    $fake->wait_requests('livekit', 1, timeout => 5);
    $fake->stop; $fake->start;                    # the same port again

=head1 DESCRIPTION

Starts C<node t/fake/providers.mjs> on a free loopback port with generated
credentials (passed to it in its environment), and stops it at exit.

=over

=item new(%o)

C<livekit_key>, C<livekit_secret>, C<openai_key> (random by default),
C<timeout> (10 s).  Skips the test (C<plan skip_all>) when node or
F<t/fake/node_modules> is missing (C<npm ci --prefix t/fake --no-audit
--no-fund> installs it); dies instead when C<CI> or
C<CALLSTOP_REQUIRE_FAKE> is set, so that CI cannot pass by skipping.

=item FakeProviders->harness(%o)

Starts the fake, then a C<CallstopTest> (C<%o> passed to it, but callstopd
started only once the secret files are written into its tmpdir and
C<conf> merged over the provider keys; C<livekit =E<gt> 0> or
C<openai =E<gt> 0> leaves a provider unconfigured).  Returns C<($t, $fake)>.

=item url, port, livekit_key, livekit_secret, openai_key, secrets

=item conf($dir, livekit => 1, openai => 1)

Writes the secrets into files in C<$dir> (mode 0600) and returns the
configuration keys, in the harness's C<section.key> form, that point
callstopd at this fake.

=item control(%modes), reset, stats, requests($provider), wait_requests($provider, $n, timeout => $s)

See F<t/fake/providers.mjs> for the modes and the recorded fields.
C<requests()> without a provider lists the termination requests (DeleteRoom,
hangups), not the read-backs of SPEC 11: C<requests('livekit_admin')> lists
ListParticipants and RemoveParticipant, C<requests('all')> everything.

=item FakeProviders::running_batch($t, $tenant_id, $job_id, $n, room => 'PREFIX', openai => 'PREFIX')

A batch of C<$n> entries whose calls were all claimed, started and reported
C<running> through the dialer functions, set-based (one statement each).
Call i gets the room C<PREFIX-i> (default C<$job_id-room>) and, with
C<openai>, the OpenAI call id C<PREFIX-i>.  Returns the batch uuid.

=item FakeProviders::settled($t, timeout => $s)

Waits (up to C<$s>, default 10, scaled) until no termination_outbox row is
C<sent> any more: the LiveKit rooms the retry child is reading back (SPEC 11)
are verified.  A test that checks C<done> right after a cancel waits for
this first, since C<done> now means verified.  Returns true if they are.

=item stop, start

Stop the fake (SIGTERM); start it again on the same port.

=back

=cut

use v5.36;

use parent 'NodeFake';
use Time::HiRes qw(sleep time);

sub _rand ($n) {
	my @c = ('A' .. 'Z', 'a' .. 'z', '0' .. '9');
	open(my $fh, '<:raw', '/dev/urandom') or die "urandom: $!";
	read($fh, my $bytes, $n) == $n or die 'short read from /dev/urandom';
	return join '', map { $c[ord($_) % @c] } split //, $bytes;
}

sub new ($class, %o) {
	my $self = $class->_new(what => 'fake providers', script => 'providers.mjs', module => 'livekit-server-sdk',
		livekit_key    => $o{livekit_key} // 'APIfake' . _rand(8),
		livekit_secret => $o{livekit_secret} // _rand(40),
		openai_key     => $o{openai_key} // 'sk-fake-' . _rand(32),
		timeout        => $o{timeout} // 10);
	$self->start;
	return $self;
}

sub harness ($class, %o) {
	require CallstopTest;
	my %fo = map { exists $o{$_} ? ($_ => delete $o{$_}) : () } qw(livekit openai);
	my $fake = $class->new;
	my $conf = delete $o{conf} // {};
	my $off = delete $o{callstopd_off};
	my $t = CallstopTest->new(%o, callstopd_off => 1);
	$t->write_conf(conf => { %{ $fake->conf($t->tmpdir, %fo) }, %$conf });
	$t->start_callstopd unless $off;
	return ($t, $fake);
}

sub url ($self)            { return "http://127.0.0.1:$self->{port}" }
sub livekit_key ($self)    { return $self->{livekit_key} }
sub livekit_secret ($self) { return $self->{livekit_secret} }
sub openai_key ($self)     { return $self->{openai_key} }

sub start ($self) {
	return $self->_start(LIVEKIT_API_KEY => $self->{livekit_key}, LIVEKIT_API_SECRET => $self->{livekit_secret},
		OPENAI_API_KEY => $self->{openai_key});
}

sub control ($self, %c) { return $self->_call(POST => '/_control', \%c) }
sub reset ($self)       { return $self->_call(POST => '/_reset', {}) }

sub stats ($self) { return $self->_call(GET => '/_stats') }

sub requests ($self, $provider = undef) {
	my $r = $self->_call(GET => '/_requests' . (defined $provider ? "?provider=$provider" : ''));
	return wantarray ? @$r : $r;
}

# Wait until at least $n requests of $provider have been answered (or, with
# answered => 0, received); returns them.
sub wait_requests ($self, $provider, $n, %o) {
	my $deadline = time + ($o{timeout} // 10);
	my $answered = $o{answered} // 1;
	while (1) {
		my @r = grep { !$answered || defined $_->{status} } $self->requests($provider);
		return @r if @r >= $n || time > $deadline;
		sleep($o{interval} // 0.05);
	}
}

sub running_batch ($t, $tenant_id, $job_id, $n, %o) {
	require Fixtures;
	my $batch = Fixtures::fx_batch($t, $tenant_id, $job_id, $n);
	my $room = $o{room} // "$job_id-room";
	my $oa = defined $o{openai} ? "'$o{openai}-' || row_number() OVER ()" : 'NULL';
	$t->psql(<<~"SQL");
		SELECT count(callstop_start_call(c.entry_id, 'bench', 'agent-1', '$room-' || c.rn, c.oa))
		FROM (SELECT entry_id, row_number() OVER (ORDER BY entry_id) AS rn,
		             $oa AS oa
		      FROM callstop_claim_entries('$batch', 'bench', $n)) c;
		SELECT count(callstop_report_call(id, 'running')) FROM voice_call_logs WHERE batch_id = '$batch';
		SQL
	return $batch;
}

sub settled ($t, %o) {
	return $t->wait_until(
		sub { $t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state = 'sent'}) == 0 },
		timeout => CallstopTest::scaled($o{timeout} // 10), interval => 0.05);
}

# Secret files in $dir and the harness conf keys pointing callstopd here.
sub conf ($self, $dir, %o) {
	my %want = (livekit => 1, openai => 1, %o);
	my %conf;
	if ($want{livekit}) {
		_write_secret("$dir/livekit.secret", $self->{livekit_secret});
		%conf = (%conf, 'livekit.url' => $self->url, 'livekit.api_key' => $self->{livekit_key},
			'livekit.api_secret_file' => "$dir/livekit.secret");
	}
	if ($want{openai}) {
		_write_secret("$dir/openai.key", $self->{openai_key});
		%conf = (%conf, 'openai.base_url' => $self->url, 'openai.api_key_file' => "$dir/openai.key");
	}
	return \%conf;
}

sub _write_secret ($file, $secret) {
	open(my $fh, '>', $file) or die "write $file: $!";
	chmod 0600, $file;
	print {$fh} "$secret\n";
	close $fh or die "close $file: $!";
	return;
}

# The secrets this fake knows, for "no secret in any log" checks.
sub secrets ($self) {
	return ($self->{livekit_secret}, $self->{openai_key});
}

1;
