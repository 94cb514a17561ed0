package NodeFake;

=head1 NAME

NodeFake - what FakeProviders and FakeReceiver share: a node script of
F<t/fake/> run as a child on a loopback port

=head1 DESCRIPTION

C<_new($class, what =E<gt> ..., script =E<gt> ..., module =E<gt> ..., %fields)>
(C<timeout> to start, default 10 s; C<keep_alive> of the control
connection, default 1)
finds node (C<CALLSTOP_NODE>, else the PATH) and the npm C<module> in
F<t/fake/node_modules>; without them it skips the test (C<plan skip_all>), or
dies when C<CI> or C<CALLSTOP_REQUIRE_FAKE> is set, so that CI cannot pass by
skipping.  C<_start(%env)> runs C<node SCRIPT PORT> with %env (port 0 the
first time: the script prints the port it took on its first line; the same
port again after C<stop>); C<stop> sends SIGTERM (SIGKILL after 5 s);
C<_call> asks the script's control routes (JSON in, JSON out).  A fake still
running when its object goes or the test exits is stopped.

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
our $SRCDIR = $ENV{CALLSTOP_SRCDIR}
	// abs_path(File::Spec->catdir(dirname(__FILE__), File::Spec->updir, File::Spec->updir));
my %LIVE;

sub _which ($name) {
	for my $dir (split /:/, $ENV{PATH} // '') {
		return "$dir/$name" if length $dir && -x "$dir/$name";
	}
	return undef;
}

sub _slurp ($file) {
	open(my $fh, '<', $file) or return '';
	local $/;
	return <$fh> // '';
}

sub _new ($class, %o) {
	my ($what, $module, $script) = delete @o{qw(what module script)};
	my $node = $ENV{CALLSTOP_NODE} // _which('node');
	my $why = !$node ? 'node not found (install nodejs)'
		: !-d "$SRCDIR/t/fake/node_modules/$module"
		? 't/fake/node_modules missing (run: npm ci --prefix t/fake --no-audit --no-fund)' : undef;
	if ($why) {
		croak "$what: $why" if $ENV{CI} || $ENV{CALLSTOP_REQUIRE_FAKE};
		my $tb = Test::More->builder;
		Test::More::plan(skip_all => "$what: $why") if !$tb->has_plan && $tb->current_test == 0;
		croak "$what: $why";
	}
	my $keep_alive = delete $o{keep_alive} // 1;
	my $self = bless { timeout => 10, %o, what => $what, owner => $$, node => $node,
		script => "$SRCDIR/t/fake/$script", port => 0,
		dir => tempdir('fake-XXXXXX', TMPDIR => 1, CLEANUP => 1),
		http => HTTP::Tiny->new(timeout => 30, keep_alive => $keep_alive) }, $class;
	$LIVE{"$self"} = $self;
	weaken($LIVE{"$self"});
	return $self;
}

sub port ($self) { return $self->{port} }
sub pid ($self)  { return $self->{pid} }

sub _start ($self, %env) {
	croak "$self->{what} already running" if $self->{pid};
	my $out = "$self->{dir}/stdout";
	unlink $out;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval {
			open(STDIN, '<', '/dev/null') or die "stdin: $!\n";
			open(STDOUT, '>', $out) or die "stdout: $!\n";
			open(STDERR, '>>', "$self->{dir}/stderr") or die "stderr: $!\n";
			@ENV{ keys %env } = values %env;
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
			croak "$self->{what} did not start:\n" . _slurp("$self->{dir}/stderr");
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
	croak "$self->{what}: $method $path: $res->{status} $res->{content}" unless $res->{success};
	return $JSON->decode($res->{content});
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
