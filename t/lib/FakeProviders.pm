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

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG _exit);
use Scalar::Util qw(weaken);
use Test::More ();
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;
my $SRCDIR = $ENV{CALLSTOP_SRCDIR}
	// abs_path(File::Spec->catdir(dirname(__FILE__), File::Spec->updir, File::Spec->updir));
my %LIVE;

sub _which ($name) {
	for my $dir (split /:/, $ENV{PATH} // '') {
		return "$dir/$name" if length $dir && -x "$dir/$name";
	}
	return undef;
}

sub _rand ($n) {
	my @c = ('A' .. 'Z', 'a' .. 'z', '0' .. '9');
	open(my $fh, '<:raw', '/dev/urandom') or die "urandom: $!";
	read($fh, my $bytes, $n) == $n or die 'short read from /dev/urandom';
	return join '', map { $c[ord($_) % @c] } split //, $bytes;
}

sub new ($class, %o) {
	my $node = $ENV{CALLSTOP_NODE} // _which('node');
	my $script = "$SRCDIR/t/fake/providers.mjs";
	my $why = !$node ? 'node not found (install nodejs)'
		: !-d "$SRCDIR/t/fake/node_modules/livekit-server-sdk"
		? 't/fake/node_modules missing (run: npm ci --prefix t/fake --no-audit --no-fund)' : undef;
	if ($why) {
		# In CI a missing install step must show, not pass as skipped tests.
		croak "fake providers: $why" if $ENV{CI} || $ENV{CALLSTOP_REQUIRE_FAKE};
		my $tb = Test::More->builder;
		Test::More::plan(skip_all => "fake providers: $why") if !$tb->has_plan && $tb->current_test == 0;
		croak "fake providers: $why";
	}
	my $self = bless {
		owner          => $$,
		node           => $node,
		script         => $script,
		livekit_key    => $o{livekit_key} // 'APIfake' . _rand(8),
		livekit_secret => $o{livekit_secret} // _rand(40),
		openai_key     => $o{openai_key} // 'sk-fake-' . _rand(32),
		timeout        => $o{timeout} // 10,
		dir            => tempdir('fakeprov-XXXXXX', TMPDIR => 1, CLEANUP => 1),
		port           => 0,
		http           => HTTP::Tiny->new(timeout => 30, keep_alive => 1),
	}, $class;
	$LIVE{"$self"} = $self;
	weaken($LIVE{"$self"});
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

sub port ($self)           { return $self->{port} }
sub url ($self)            { return "http://127.0.0.1:$self->{port}" }
sub livekit_key ($self)    { return $self->{livekit_key} }
sub livekit_secret ($self) { return $self->{livekit_secret} }
sub openai_key ($self)     { return $self->{openai_key} }
sub pid ($self)            { return $self->{pid} }

sub start ($self) {
	croak 'fake providers already running' if $self->{pid};
	my $out = "$self->{dir}/stdout";
	unlink $out;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval {
			open(STDIN, '<', '/dev/null') or die "stdin: $!\n";
			open(STDOUT, '>', $out) or die "stdout: $!\n";
			open(STDERR, '>>', "$self->{dir}/stderr") or die "stderr: $!\n";
			$ENV{LIVEKIT_API_KEY} = $self->{livekit_key};
			$ENV{LIVEKIT_API_SECRET} = $self->{livekit_secret};
			$ENV{OPENAI_API_KEY} = $self->{openai_key};
			exec { $self->{node} } $self->{node}, $self->{script}, $self->{port}
				or die "exec $self->{node}: $!\n";
		};
		print STDERR $@;
		_exit(127);
	}
	$self->{pid} = $pid;
	my $deadline = time + $self->{timeout};
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
			croak "fake providers did not start:\n" . _slurp("$self->{dir}/stderr");
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

sub _slurp ($file) {
	open(my $fh, '<', $file) or return '';
	local $/;
	return <$fh> // '';
}

sub _call ($self, $method, $path, $body = undef) {
	my $res = $self->{http}->request($method, $self->url . $path,
		defined $body ? { headers => { 'Content-Type' => 'application/json' }, content => $JSON->encode($body) }
		: {});
	croak "fake providers: $method $path: $res->{status} $res->{content}" unless $res->{success};
	return $JSON->decode($res->{content});
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

sub DESTROY ($self) {
	$self->stop if $self->{owner} && $$ == $self->{owner};
	return;
}

END {
	for my $f (grep { defined } values %LIVE) {
		$f->stop if $$ == $f->{owner};
	}
}

1;
