package CallstopTest;

=head1 NAME

CallstopTest - end-to-end harness for the callstop test suite

=head1 SYNOPSIS

    use v5.36;
    use Test::More;
    use lib 't/lib';
    use CallstopTest;

    my $t = CallstopTest->new(workers => 2);     # skip_all if no PG/nginx

    my $tenant = $t->tenant('acme', workspace_id => 'ws-1');
    my $key    = $t->key(tenant => 'acme', frontend_id => 'web');

    my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'web',
                    json => { resource_id => $uuid });
    is($r->{status}, 200);
    is($r->{json}{results}[0]{status}, 'cancelled');

    done_testing();     # everything is stopped at exit, even after a die

=head1 DESCRIPTION

Each test file gets its own world: a temporary directory, a throwaway
PostgreSQL cluster, callstopd and nginx (rendered from
F<nginx/callstop.conf.in>) on free loopback ports / unix sockets.  Nothing is
left running when the test ends, whether it passes, fails or dies.

Environment:

=over

=item CALLSTOP_BUILDDIR

Build directory: binaries at F<$B/src/callstopd> and F<$B/src/callstopctl>.
Default: CALLSTOP_SRCDIR.

=item CALLSTOP_SRCDIR

Source directory: F<$S/sql> (migrations) and F<$S/nginx> (site template,
render script).  Default: two levels above this module.

=item CALLSTOP_PG_BINDIR

Directory of initdb/pg_ctl/postgres.  Default: the newest
F</usr/lib/postgresql/*/bin>, else the PATH.

=item CALLSTOP_NGINX

The nginx binary.  Default: C<nginx> in PATH or F</usr/sbin/nginx>.

=item CALLSTOP_TEST_KEEP

If true, the temporary directory (logs, configs, data) is kept and its path
printed.

=item CALLSTOP_TEST_TIMEOUT_SCALE

One factor for every time-bound wait of the suite (default 1; e.g. 3 on a
loaded machine or for a sanitizer build).  The harness's own waits apply it
(C<wait_until>, C<request>'s timeout, starting and stopping callstopd, nginx
and PostgreSQL, C<Dialer::wait>); a deadline a test computes itself uses
C<scaled(N)> (exported).  Durations that are part of the scenario (a
C<sleep> past a grace period, a load's C<duration>) are not deadlines and
are not scaled.

=back

=head2 Sanitizers

Every callstopd and callstopctl the harness starts (and every process the
test starts, through the environment) gets C<ASAN_OPTIONS> and
C<UBSAN_OPTIONS> with C<log_path> in F<TMPDIR/sanitizer/> (mode 1777, so
that a callstopd that dropped its privileges can write there).  When the
harness stops, after every process has exited, any report file there fails
the test file (one more failed test, "no sanitizer report") and is printed;
so does a report on the stderr of callstopd or of a command run through the
harness (gcc's runtime prints UBSan's reports there when ASan is linked
too; clang's honours log_path).  On a build without sanitizers the options
are ignored.

If PostgreSQL, nginx or openssl is missing, the test is skipped
(C<plan skip_all>) with the reason: construct the harness before running any
test.  Missing callstop binaries are an error (unless switched off).

When run as root, PostgreSQL (which refuses root) runs as the unprivileged
system user C<callstop> (created if missing), the temporary directory is
chowned to it, and nginx gets C<user root;> so that its workers can reach
the callstopd socket.  callstopd runs as the invoking user.

On failure, the tails of the callstopd, nginx and PostgreSQL logs are printed
as diagnostics when the harness stops.

=head1 CONSTRUCTOR

=head2 test_hooks

    plan skip_all => 'needs --enable-test-hooks' unless CallstopTest->test_hooks;

True when callstopd was built with C<--enable-test-hooks> (the test_* keys
and CALLSTOP_TEST_PAUSE_AFTER_COMMIT_MS of F<src/common/fault.h>).

=head2 new(%opts)

    workers       => 2,           # callstopd workers
    conf          => { k => v },  # extra [callstopd] keys (undef deletes one);
                                  # "section.key" goes to [section], e.g.
                                  # 'livekit.url' => ..., 'outbox.max_attempts' => 3
    env           => { K => v },  # extra environment of callstopd (undef unsets)
    nginx         => { RATE => '10000r/s', BURST => 1000, BODY_LIMIT => '64k' },
                                  # template variables (these are the
                                  # harness defaults; others are generated)
    nginx_off     => 0,           # do not start nginx
    callstopd_off => 0,           # do not start callstopd (nginx answers 502)
    migrate_off   => 0,           # do not run the migrations
    timeout       => 15,          # seconds to wait for anything to start
    instances     => 1,           # callstopd instances (several hosts)

If C<conf> sets C<listen> to C<host:port>, nginx is pointed there over TCP.

With C<instances> above 1, every instance listens on its own TCP port of
127.0.0.1 (instance 0 on C<conf>'s C<listen> if it is set), shares the
database and the rest of the configuration (each has its own log file,
F<callstopd-N.log>, and no pid file), and the site's C<upstream callstop>
holds a server line for each of them, as F<doc/several-hosts.md>
describes.  The methods without an instance number (C<callstopd_pid>,
C<stop_callstopd>, C<log>, ...) are about instance 0.

=head1 METHODS

=over

=item conninfo, base_url, tmpdir, conf_file, pg_port

C<conninfo> is a libpq string (unix socket, user postgres, db callstop);
C<base_url> is C<https://127.0.0.1:PORT> (undef with nginx_off).

=item log, nginx_log, access_log, pg_log

Current text of the callstopd log (log_file plus its stderr), nginx error
log, nginx access log, PostgreSQL server log.

=item psql($sql, db => $name)

Runs C<psql -X -q -At -F TAB -v ON_ERROR_STOP=1> with the SQL on stdin, in
database callstop or C<db>; returns an arrayref of rows, each an arrayref of
columns (NULL is ''; values containing a newline or a tab are not
supported).  Dies on error.

=item psql_value($sql)

First column of the first row, or undef.

=item ctl(@args)

Runs C<callstopctl -d CONNINFO @args>; returns C<($exit_code, $stdout,
$stderr)>.

=item create_database($name), ctl_in($name, @args)

Another database in the test's cluster (empty, no migration run), and
C<callstopctl> run against it, as C<ctl>.

=item tenant($name, workspace_id => $w)

C<callstopctl tenant add NAME [--workspace-id W]>; returns the tenant id
(trimmed stdout).  Dies on failure.

=item key(tenant => $name, frontend_id => $fid)

C<callstopctl key create --tenant NAME --frontend-id FID>; returns the key.
Dies on failure.

=item admin_token(@args)

C<callstopctl admin-token create @args>; returns the token.  Dies on failure.

=item request($method, $path, headers => {...}, body => $str_or_ref, content_type => $ct, timeout => $s)

(C<timeout> is scaled, as every deadline of the harness.)


HTTPS through nginx (the generated certificate is verified).  A ref body is
JSON-encoded and sent as C<application/json> unless C<content_type> is given.
Returns C<{status, reason, headers (lower-case keys), body, json}>, C<json>
being the decoded body or undef.  Connection errors come back as status 599
(HTTP::Tiny) with the reason in C<body>.

=item api($method, $path, key => $k, frontend => $f, json => $ref, headers => {...}, body => ...)

Unified-family request: adds C<X-API-Key> and C<X-Frontend-ID> (when given).

=item url($path)

C<base_url . $path>.

=item pg_stop, pg_start

Stop (fast) / start the same cluster on the same port.

=item callstopd_pid, worker_pids, nginx_pid

C<worker_pids> lists the current children of the callstopd master (from
/proc), sorted (their number in scalar context); this includes the outbox
retry child.

=item start_callstopd, stop_callstopd(signal => 'TERM'), restart_callstopd(conf => {...}, env => {...})

C<restart_callstopd> stops callstopd (SIGTERM, wait), merges the given keys
into the configuration (and C<env> into its environment), rewrites the file
and starts it again.

=item write_conf(conf => {...})

Merge keys into the callstopd configuration and rewrite the file (for a
SIGHUP reload test) without restarting.

=item wait_until($code, timeout => 5, interval => 0.05)

Polls C<$code> until it returns true; returns its last value (false on
timeout).  The timeout is multiplied by CALLSTOP_TEST_TIMEOUT_SCALE here:
pass the plain number, not C<scaled(N)>.

=item scaled($seconds)

Exported: C<$seconds> times CALLSTOP_TEST_TIMEOUT_SCALE, for a deadline the
test computes itself (C<time + scaled(5)>, a fake provider's wait).

=item nginx_check

C<nginx -t> on the generated configuration: C<($exit_code, $output)>.

=item instances, instance_pid($i), instance_log($i), instance_listen($i), instance_conf_file($i)

=item start_instance($i), stop_instance($i, signal => 'TERM')

The other instances (C<instances> option); C<$i == 0> is the one the methods
above handle.

=item request(..., local_address => '127.0.0.2')

C<request> also takes C<local_address>: the request is sent from that address
(another loopback address is "not 127.0.0.1" for nginx's C<allow>).

=item status_json, metrics

C<GET /callstop-status> (decoded) and C<GET /callstop-metrics> (as a hash of
C<< 'name{labels}' => value >>) through nginx; they die unless the answer is
200.

=item fcgi_request(params => {...}, body => $s, instance => 0)

One FastCGI request straight to callstopd's socket, bypassing nginx
(C<REQUEST_METHOD> GET, C<DOCUMENT_URI> / and C<REQUEST_ID> fcgi-test unless
given).  Returns C<{status, headers, body, json}>.

=item proc_ids($pid)

From F</proc/PID/status>: C<{uid =E<gt> [real, effective, saved, fs], gid
=E<gt> [...], groups =E<gt> [...]}>, or undef if the process is gone.

=item load_start(procs => 4, duration => 5, requests => $max, request => sub ($proc, $n) {...})

Starts a bounded load: C<procs> forked clients, each sending requests one
after the other until C<duration> seconds have passed (or C<requests> were
sent).  The sub returns C<[$method, $path, headers =E<gt> {...}, json =E<gt>
$ref]> for request C<$n> of client C<$proc> (1-based).  Returns a handle.

=item load_wait($load, stop => 0, ok => sub ($status) {...})

Waits for the clients (C<stop>: tell them to stop now) and returns
C<{total, by_status =E<gt> {status =E<gt> count}, failed =E<gt> [descriptions],
max_seconds}>; a request failed unless C<ok> (default: 2xx) accepts its
status.  Connection errors count as 599.

=item stop

Stops nginx, callstopd (SIGTERM, then SIGKILL after the timeout, children
included) and PostgreSQL, and removes the temporary directory.  Called
automatically at exit and on destruction; only the process that created the
harness stops anything (a forked child exiting does not).

=back

=cut

use v5.36;

use Carp qw(croak confess);
use Cwd qw(abs_path);
use Errno qw(EINTR ECHILD);
use Fcntl qw(O_RDONLY);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(remove_tree make_path);
use File::Spec;
use File::Temp qw(tempdir tempfile);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG _exit setsid);
use Scalar::Util qw(weaken);
use Test::More ();
use OpenAPICheck ();    # every answer of request() against doc/openapi.yaml
use Time::HiRes qw(sleep time);
use Exporter 'import';

our $VERSION = '0.1';
our @EXPORT = qw(scaled);

# CALLSTOP_TEST_TIMEOUT_SCALE: one factor for every deadline of the suite.
my $SCALE = do {
	my $s = $ENV{CALLSTOP_TEST_TIMEOUT_SCALE} // 1;
	$s =~ /^\d+(?:\.\d+)?$/ && $s > 0 or die "CALLSTOP_TEST_TIMEOUT_SCALE must be a positive number, not '$s'\n";
	$s;
};

# A deadline of $seconds, scaled (see CALLSTOP_TEST_TIMEOUT_SCALE).
sub scaled ($seconds) { return $seconds * $SCALE }

my %LIVE;     # harnesses not yet stopped: stopped in END even after a die
my $DYING;    # an uncaught die is unwinding: show the logs when stopping
my $JSON = JSON::PP->new->utf8->canonical;

my $SRCDIR = $ENV{CALLSTOP_SRCDIR}
	// abs_path(File::Spec->catdir(dirname(__FILE__), File::Spec->updir, File::Spec->updir));
my $BUILDDIR = $ENV{CALLSTOP_BUILDDIR} // $SRCDIR;

# ---- construction -----------------------------------------------------------

# Was callstopd built with --enable-test-hooks (src/common/fault.h)?  The
# tests of the watchdog, the crash-loop backoff and a worker killed after
# commit need its hooks; ./bootstrap check turns them on, packages never.
sub test_hooks ($class = undef) {
	open(my $fh, '<', "$BUILDDIR/config.h") or return 0;
	local $/;
	my $h = <$fh>;
	return $h =~ /^#define CALLSTOP_TEST_HOOKS 1$/m ? 1 : 0;
}

sub new ($class, %opt) {
	my $self = bless {
		owner     => $$,
		workers   => $opt{workers} // 2,
		conf_over => { %{ $opt{conf} // {} } },
		env       => { %{ $opt{env} // {} } },
		nginx_var => {
			RATE       => '10000r/s',
			BURST      => 1000,
			BODY_LIMIT => '64k',
			%{ $opt{nginx} // {} },
		},
		nginx_off     => $opt{nginx_off}     // 0,
		callstopd_off => $opt{callstopd_off} // 0,
		migrate_off   => $opt{migrate_off}   // 0,
		timeout       => $opt{timeout}       // 15,
		instances     => $opt{instances}     // 1,
		srcdir        => $SRCDIR,
		builddir      => $BUILDDIR,
	}, $class;

	$self->_find_tools;
	$self->{callstopd} = "$BUILDDIR/src/callstopd";
	$self->{callstopctl} = "$BUILDDIR/src/callstopctl";
	if (!$self->{migrate_off} && !-x $self->{callstopctl}) {
		croak "$self->{callstopctl} is not built (CALLSTOP_BUILDDIR=$BUILDDIR)";
	}
	if (!$self->{callstopd_off} && !-x $self->{callstopd}) {
		croak "$self->{callstopd} is not built (CALLSTOP_BUILDDIR=$BUILDDIR)";
	}

	$LIVE{"$self"} = $self;
	weaken($LIVE{"$self"});
	_install_signal_handlers();

	$self->_make_tmpdir;
	$self->_sanitizer_env;
	$self->_pg_init;
	$self->pg_start;
	$self->create_database('callstop');
	$self->_migrate unless $self->{migrate_off};

	# several instances talk TCP; instance 0 too, unless told otherwise
	$self->{conf_over}{listen} //= '127.0.0.1:' . _free_port() if $self->{instances} > 1;
	$self->write_conf;
	unless ($self->{callstopd_off}) {
		$self->start_callstopd;
		$self->start_instance($_) for 1 .. $self->{instances} - 1;
	}

	unless ($self->{nginx_off}) {
		$self->_make_cert;
		$self->_write_nginx_conf;
		my ($rc, $out) = $self->nginx_check;
		croak "nginx -t failed on the generated configuration:\n$out" if $rc != 0;
		$self->_start_nginx;
	}
	return $self;
}

sub _skip ($reason) {
	my $tb = Test::More->builder;
	if (!$tb->has_plan && $tb->current_test == 0) {
		Test::More::plan(skip_all => $reason);
	}
	croak "cannot run: $reason";
}

sub _which ($name) {
	for my $dir (split /:/, $ENV{PATH} // '', -1) {
		my $p = File::Spec->catfile($dir eq '' ? '.' : $dir, $name);
		return $p if -f $p && -x _;
	}
	for my $dir (qw(/usr/sbin /sbin /usr/local/sbin)) {
		return "$dir/$name" if -x "$dir/$name";
	}
	return undef;
}

sub _find_tools ($self) {
	my $bindir = $ENV{CALLSTOP_PG_BINDIR};
	if (!defined $bindir) {
		my @dirs = sort { ($b =~ m{/(\d+)/bin$})[0] <=> ($a =~ m{/(\d+)/bin$})[0] }
			grep { m{/(\d+)/bin$} && -x "$_/initdb" } glob('/usr/lib/postgresql/*/bin');
		$bindir = $dirs[0];
	}
	for my $tool (qw(initdb pg_ctl postgres)) {
		my $p = defined $bindir && -x "$bindir/$tool" ? "$bindir/$tool" : _which($tool);
		_skip("PostgreSQL server ($tool) not found; install postgresql or set CALLSTOP_PG_BINDIR")
			unless $p;
		$self->{$tool} = $p;
	}
	$self->{psql} = (defined $bindir && -x "$bindir/psql") ? "$bindir/psql" : _which('psql')
		or _skip('psql not found; install postgresql-client');

	my $nginx = $ENV{CALLSTOP_NGINX} // _which('nginx');
	$nginx && -x $nginx or _skip('nginx not found; install nginx-light or set CALLSTOP_NGINX')
		unless $self->{nginx_off};
	$self->{nginx} = $nginx;

	$self->{openssl} = _which('openssl') or _skip('openssl not found')
		unless $self->{nginx_off};

	if ($> == 0) {
		_which('runuser') or _skip('running as root needs runuser (util-linux)');
	}
	return;
}

sub _make_tmpdir ($self) {
	my $dir = tempdir('callstop-XXXXXX', TMPDIR => 1, CLEANUP => 0);
	$self->{tmpdir} = $dir;
	mkdir "$dir/$_" or die "mkdir $dir/$_: $!" for qw(pg run nginx);

	if ($> == 0) {
		# PostgreSQL refuses to run as root: the cluster belongs to "callstop".
		my @pw = getpwnam('callstop');
		if (!@pw) {
			$self->_run_ok([ 'useradd', '--system', '--home-dir', '/var/lib/callstop', '--no-create-home', '--shell', '/usr/sbin/nologin',
				'callstop' ], 'useradd callstop');
			@pw = getpwnam('callstop') or die 'useradd did not create user callstop';
		}
		@{$self}{qw(pg_uid pg_gid)} = @pw[2, 3];
		chown $pw[2], $pw[3], $dir, "$dir/pg", "$dir/run"
			or die "chown $dir: $!";
	}
	return;
}

# ASan/UBSan write their reports into TMPDIR/sanitizer/ (checked by stop).
# World-writable: callstopd may have dropped to another user.  Set in this
# process's environment too, so that whatever the test starts itself
# (callstopctl, another callstopd) reports there as well.
sub _sanitizer_env ($self) {
	my $dir = "$self->{tmpdir}/sanitizer";
	mkdir $dir or die "mkdir $dir: $!";
	chmod 01777, $dir or die "chmod $dir: $!";
	$self->{san_dir} = $dir;
	my %env;
	for my $v ([ ASAN_OPTIONS => 'asan' ], [ UBSAN_OPTIONS => 'ubsan' ]) {
		my ($name, $prefix) = @$v;
		my $base = $self->{san_base}{$name} //= $ENV{$name} // '';
		# later options win: the caller's own options stay, log_path is ours
		$env{$name} = join ':', grep { length } $base, "log_path=$dir/$prefix", 'print_stacktrace=1';
	}
	$self->{san_env} = \%env;
	$ENV{$_} = $env{$_} for keys %env;
	return;
}

# What a sanitizer report starts with, on stderr.  gcc's runtime writes
# UBSan's reports to stderr even with log_path when ASan is linked too, so
# the stderr files are read as well.
my $SAN_REPORT = qr/^(?:==\d+==ERROR: \w+Sanitizer|\S+:\d+:\d+: runtime error: |SUMMARY: \w+Sanitizer)/m;

# The sanitizer reports written so far: ([where, text], ...).
sub sanitizer_reports ($self) {
	my $dir = $self->{san_dir} or return ();
	my @r;
	if (opendir(my $dh, $dir)) {
		push @r, map { [ "$dir/$_", _slurp("$dir/$_") ] } sort grep { /^(?:asan|ubsan)\./ } readdir $dh;
	}
	my $t = $self->{tmpdir};
	for my $f ("$t/callstopd.stderr", map { "$t/callstopd-$_.stderr" } 1 .. ($self->{instances} // 1) - 1) {
		my $text = _slurp($f);
		push @r, [ $f, $text ] if $text =~ $SAN_REPORT;
	}
	return (@r, @{ $self->{san_stderr} // [] });
}

# Command prefix that runs a PostgreSQL tool as the cluster owner.
sub _as_pg ($self, @cmd) {
	return ($> == 0) ? ('runuser', '-u', 'callstop', '--', @cmd) : @cmd;
}

sub _free_port {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
		ReuseAddr => 1)
		or die "cannot bind a free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# ---- running commands -------------------------------------------------------

# Run a command (no shell); stdout/stderr go through files so that neither
# can fill a pipe.  Returns (exit code, stdout, stderr); exit code is 128+N
# when killed by signal N.
sub _run ($self, $cmd, %o) {
	my $dir = $self->{tmpdir} // File::Spec->tmpdir;
	my ($ofh, $ofile) = tempfile('out-XXXXXX', DIR => $dir, UNLINK => 1);
	my ($efh, $efile) = tempfile('err-XXXXXX', DIR => $dir, UNLINK => 1);
	my ($ifh, $ifile);
	if (defined $o{stdin}) {
		($ifh, $ifile) = tempfile('in-XXXXXX', DIR => $dir, UNLINK => 1);
		print {$ifh} $o{stdin};
		close $ifh;
	}
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval {
			chdir($o{cwd} // $dir) or die "chdir: $!\n";
			open(STDIN, '<', $ifile // '/dev/null') or die "stdin: $!\n";
			open(STDOUT, '>&', $ofh) or die "stdout: $!\n";
			open(STDERR, '>&', $efh) or die "stderr: $!\n";
			local $ENV{PGCONNECT_TIMEOUT} = 5;
			@ENV{ keys %{ $self->{san_env} // {} } } = values %{ $self->{san_env} // {} };
			exec { $cmd->[0] } @$cmd or die "exec $cmd->[0]: $!\n";
		};
		print {$efh} $@;
		_exit(127);
	}
	_waitpid($pid);
	my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my $out = _slurp($ofile);
	my $err = _slurp($efile);
	push @{ $self->{san_stderr} }, [ "stderr of @$cmd", $err ] if $err =~ $SAN_REPORT;
	close $ofh;
	close $efh;
	unlink grep { defined } $ofile, $efile, $ifile;
	return ($rc, $out, $err);
}

sub _run_ok ($self, $cmd, $what, %o) {
	my ($rc, $out, $err) = $self->_run($cmd, %o);
	confess "$what failed (exit $rc): @$cmd\n$err$out" if $rc != 0;
	return $out;
}

sub _waitpid ($pid, $flags = 0) {
	while (1) {
		my $r = waitpid($pid, $flags);
		return $r unless $r == -1 && $! == EINTR;
	}
}

sub _slurp ($file) {
	open(my $fh, '<', $file) or return '';
	local $/;
	my $s = <$fh>;
	return $s // '';
}

sub _spew ($file, $text) {
	open(my $fh, '>', $file) or die "write $file: $!";
	print {$fh} $text;
	close $fh or die "close $file: $!";
	return;
}

# ---- PostgreSQL ---------------------------------------------------------------

sub _pg_init ($self) {
	my $t = $self->{tmpdir};
	$self->{pg_port} = _free_port();
	$self->_run_ok([ $self->_as_pg($self->{initdb}, '--no-sync', '-A', 'trust', '-U', 'postgres',
		'-E', 'UTF8', '--locale=C', '-D', "$t/pg") ], 'initdb');
	return;
}

sub pg_start ($self) {
	my $t = $self->{tmpdir};
	# Unix socket only (listen_addresses=''); the port number names it.
	my $opts = "-k $t/run -p $self->{pg_port} -c listen_addresses='' -c fsync=off"
		. " -c synchronous_commit=off -c full_page_writes=off";
	$self->_run_ok([ $self->_as_pg($self->{pg_ctl}, '-D', "$t/pg", '-l', "$t/pg.log", '-o', $opts,
		'-w', '-t', int(scaled($self->{timeout} * 2) + 0.5), 'start') ], 'pg_ctl start');
	$self->{pg_running} = 1;
	return;
}

sub pg_stop ($self, %o) {
	return unless $self->{pg_running};
	my $t = $self->{tmpdir};
	# The postmaster's pid is the first line of postmaster.pid.
	my ($pid) = _slurp("$t/pg/postmaster.pid") =~ /^(\d+)/;
	my ($rc) = $self->_run([ $self->_as_pg($self->{pg_ctl}, '-D', "$t/pg", '-m', $o{mode} // 'fast',
		'-w', '-t', int(scaled($self->{timeout} * 2) + 0.5), 'stop') ]);
	if ($pid) {
		# pg_ctl returns once the pid file is gone, a moment before the
		# process is; "stopped" must mean stopped.
		$self->wait_until(sub { _gone($pid) }, timeout => $rc == 0 ? 5 : 0)
			or do { kill 'QUIT', $pid; $self->wait_until(sub { _gone($pid) }, timeout => 5) }
			or kill 'KILL', $pid;
	}
	$self->{pg_running} = 0;
	return;
}

sub _conninfo ($self, $db = 'callstop') {
	return "host=$self->{tmpdir}/run port=$self->{pg_port} dbname=$db user=postgres";
}

sub conninfo ($self) { return $self->_conninfo }
sub pg_port ($self) { return $self->{pg_port} }

sub _migrate ($self) {
	my ($rc, $out, $err) = $self->ctl('migrate', '--dir', "$self->{srcdir}/sql");
	die "callstopctl migrate failed (exit $rc):\n$err$out" if $rc != 0;
	return;
}

sub create_database ($self, $name) {
	$self->_run_ok([ $self->{psql}, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $self->_conninfo('postgres'),
		'-c', qq{CREATE DATABASE "$name"} ], "createdb $name");
	return;
}

sub psql ($self, $sql, %o) {
	my ($rc, $out, $err) = $self->_run([ $self->{psql}, '-X', '-q', '-At', '-F', "\t", '-v', 'ON_ERROR_STOP=1',
		'-d', $self->_conninfo($o{db} // 'callstop'), '-f', '-' ], stdin => $sql);
	croak "psql failed (exit $rc): $err\nSQL: $sql" if $rc != 0;
	return [ map { [ split /\t/, $_, -1 ] } split /\n/, $out ];
}

sub psql_value ($self, $sql) {
	my $rows = $self->psql($sql);
	return @$rows ? $rows->[0][0] : undef;
}

# ---- callstopctl ----------------------------------------------------------------

sub ctl ($self, @args) {
	return $self->ctl_in('callstop', @args);
}

sub ctl_in ($self, $db, @args) {
	return $self->_run([ $self->{callstopctl}, '-d', $self->_conninfo($db), @args ]);
}

sub _ctl_ok ($self, @args) {
	my ($rc, $out, $err) = $self->ctl(@args);
	croak "callstopctl @args failed (exit $rc): $err$out" if $rc != 0;
	$out =~ s/^\s+|\s+$//g;
	return $out;
}

sub tenant ($self, $name, %o) {
	return $self->_ctl_ok('tenant', 'add', $name,
		defined $o{workspace_id} ? ('--workspace-id', $o{workspace_id}) : ());
}

sub key ($self, %o) {
	croak 'key: tenant required' unless defined $o{tenant};
	return $self->_ctl_ok('key', 'create', '--tenant', $o{tenant},
		defined $o{frontend_id} ? ('--frontend-id', $o{frontend_id}) : ());
}

sub admin_token ($self, @args) {
	return $self->_ctl_ok('admin-token', 'create', @args);
}

# ---- callstopd --------------------------------------------------------------------

sub conf_file ($self) { return "$self->{tmpdir}/callstopd.conf" }

sub _listen ($self) {
	return $self->{conf_over}{listen} // "$self->{tmpdir}/callstopd.sock";
}

sub write_conf ($self, %o) {
	%{ $self->{conf_over} } = (%{ $self->{conf_over} }, %{ $o{conf} // {} });
	my $t = $self->{tmpdir};
	my %conf = (
		database  => $self->conninfo,
		listen    => "$t/callstopd.sock",
		workers   => $self->{workers},
		log_file  => "$t/callstopd.log",
		log_level => 'info',
		# no delivery child unless a test asks for one (t/E*.t): the
		# others count the master's children
		'webhook.enabled' => 'no',
		%{ $self->{conf_over} },
	);
	my $text = "# generated by t/lib/CallstopTest.pm\n[callstopd]\n";
	for my $k (sort grep { !/\./ } keys %conf) {
		next unless defined $conf{$k};
		$text .= "$k = $conf{$k}\n";
	}
	# "section.key": the other sections, in name order
	my %sect;
	for my $k (grep { /\./ && defined $conf{$_} } keys %conf) {
		my ($s, $name) = split /\./, $k, 2;
		$sect{$s}{$name} = $conf{$k};
	}
	for my $s (sort keys %sect) {
		$text .= "\n[$s]\n" . join '', map { "$_ = $sect{$s}{$_}\n" } sort keys %{ $sect{$s} };
	}
	_spew($self->conf_file, $text);
	$self->_write_instance_confs($text) if $self->{instances} > 1;
	return;
}

sub start_callstopd ($self) {
	croak 'callstopd already running' if $self->{callstopd_pid};
	my $listen = $self->_listen;
	unlink $listen if $listen =~ m{^[/.]};    # so that waiting sees the new socket
	my ($pid, $why) = $self->_spawn_callstopd($self->conf_file, "$self->{tmpdir}/callstopd.stderr", $listen,
		sub ($pid) { $self->{callstopd_pid} = $pid });
	if ($why) {
		delete $self->{callstopd_pid} if $why =~ /exited/;
		die "$why\n--- callstopd log:\n" . $self->log;
	}
	return $pid;
}

# Fork and exec callstopd -c $conf (stdout and stderr appended to $stderr,
# the harness's env applied), record its pid through $record at once (so
# that cleanup finds it even if the wait dies), and wait until it listens on
# $listen.  Returns ($pid, undef), or ($pid, why) if it exited or never
# listened.
sub _spawn_callstopd ($self, $conf, $stderr, $listen, $record) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval {
			chdir $self->{tmpdir} or die "chdir: $!\n";
			open(STDIN, '<', '/dev/null') or die "stdin: $!\n";
			open(STDOUT, '>>', $stderr) or die "stdout: $!\n";
			open(STDERR, '>&', \*STDOUT) or die "stderr: $!\n";
			@ENV{ keys %{ $self->{san_env} // {} } } = values %{ $self->{san_env} // {} };
			while (my ($k, $v) = each %{ $self->{env} // {} }) {
				if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
			}
			exec { $self->{callstopd} } $self->{callstopd}, '-c', $conf
				or die "exec $self->{callstopd}: $!\n";
		};
		print STDERR $@;
		_exit(127);
	}
	$record->($pid);
	my $ok = $self->wait_until(sub {
		return 'exited' if _waitpid($pid, WNOHANG) == $pid;
		return _listening($listen);
	}, timeout => $self->{timeout});
	return ($pid, undef) if $ok && $ok ne 'exited';
	return ($pid, $ok ? sprintf('callstopd exited (status %d)', $?) : "callstopd did not listen on $listen");
}

# Is something listening on the unix path or host:port?  Read from /proc
# instead of connecting: an empty connection would cost a worker a request.
sub _listening ($listen) {
	if ($listen =~ m{^[/.]}) {
		my $path = File::Spec->rel2abs($listen);
		open(my $fh, '<', '/proc/net/unix') or return -S $listen;
		while (<$fh>) {
			# Num RefCount Protocol Flags Type St Inode Path
			my @f = split ' ';
			next unless @f >= 8 && ($f[7] eq $path || $f[7] eq $listen);
			return 1 if hex($f[3]) & 0x10000;    # __SO_ACCEPTCON: listen() called
		}
		return 0;
	}
	my ($port) = $listen =~ /:(\d+)$/ or return 0;
	for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
		open(my $fh, '<', $file) or next;
		while (<$fh>) {
			my @f = split ' ';
			next unless @f > 3 && $f[1] =~ /:([0-9A-F]{4})$/;
			return 1 if hex($1) == $port && $f[3] eq '0A';    # TCP_LISTEN
		}
	}
	return 0;
}

sub stop_callstopd ($self, %o) {
	my $pid = delete $self->{callstopd_pid} or return;
	my @children = $self->_children($pid);
	kill $o{signal} // 'TERM', $pid;
	my $gone = $self->wait_until(sub { _waitpid($pid, WNOHANG) == $pid || !kill(0, $pid) },
		timeout => $self->{timeout});
	if (!$gone) {
		Test::More::diag("callstopd $pid did not stop on SIG" . ($o{signal} // 'TERM') . '; killing it');
		kill 'KILL', $pid;
		_waitpid($pid);
	}
	# A master that died without stopping its workers must not leave them.
	$self->wait_until(sub { !grep { _alive_callstopd($_) } @children }, timeout => 5)
		or kill 'KILL', grep { _alive_callstopd($_) } @children;
	return $gone ? 1 : 0;
}

# The process is gone (or a zombie waiting for a parent that is not us).
sub _gone ($pid) {
	return 1 unless kill 0, $pid;
	my ($state) = _slurp("/proc/$pid/stat") =~ /\)\s+(\S)/;
	return defined $state && $state eq 'Z' ? 1 : 0;
}

# A former worker is still alive (it may have been re-parented once the master
# is gone, so do not look at the parent; look at the executable so that a
# recycled pid of another program is never killed).
sub _alive_callstopd ($pid) {
	my $stat = _slurp("/proc/$pid/stat") or return 0;
	my ($state) = $stat =~ /\)\s+(\S)/;
	return 0 if !defined $state || $state eq 'Z';
	my $exe = readlink("/proc/$pid/exe") // '';
	return $exe =~ /callstopd/ ? 1 : 0;
}

sub restart_callstopd ($self, %o) {
	$self->stop_callstopd;
	%{ $self->{env} } = (%{ $self->{env} }, %{ $o{env} // {} });
	$self->write_conf(conf => $o{conf} // {});
	return $self->start_callstopd;
}

sub callstopd_pid ($self) { return $self->{callstopd_pid} }

sub _children ($self, $ppid) {
	my @pids;
	opendir(my $dh, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my $stat = _slurp("/proc/$pid/stat") or next;
		# pid (comm) state ppid ...; comm may contain spaces and parens.
		my ($state, $pp) = $stat =~ /\)\s+(\S)\s+(\d+)/ or next;
		push @pids, $pid + 0 if $pp == $ppid && $state ne 'Z';
	}
	@pids = sort { $a <=> $b } @pids;
	return @pids;
}

sub worker_pids ($self) {
	my @pids = $self->{callstopd_pid} ? $self->_children($self->{callstopd_pid}) : ();
	return wantarray ? @pids : scalar @pids;
}

# ---- TLS and nginx ------------------------------------------------------------------

sub _make_cert ($self) {
	my $d = "$self->{tmpdir}/nginx";
	$self->{cert} = "$d/cert.pem";
	$self->{cert_key} = "$d/key.pem";
	$self->_run_ok([ $self->{openssl}, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
		'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
		'-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', $self->{cert_key}, '-out', $self->{cert} ],
		'openssl req');
	return;
}

sub _write_nginx_conf ($self) {
	my $t = $self->{tmpdir};
	my $d = "$t/nginx";
	$self->{http_port} = _free_port();

	my $listen = $self->_listen;
	my %var = (
		LISTEN       => "127.0.0.1:$self->{http_port}",
		SERVER_NAME  => '127.0.0.1',
		SSL_CERT     => $self->{cert},
		SSL_KEY      => $self->{cert_key},
		ACCESS_LOG   => "$d/access.log",
		FASTCGI_PASS => ($listen =~ m{^[/.]} ? 'unix:' . File::Spec->rel2abs($listen) : $listen),
		%{ $self->{nginx_var} },
	);
	$self->_run_ok([ "$self->{srcdir}/nginx/render", "$self->{srcdir}/nginx/callstop.conf.in",
		"$d/callstop.conf", map { "$_=$var{$_}" } sort keys %var ], 'nginx/render');
	# Several instances: one server line each in the site's upstream, as in
	# doc/several-hosts.md.
	if ($self->{instances} > 1) {
		my $site = _slurp("$d/callstop.conf");
		my $servers = join '', map { '    server ' . $self->_instance_listen($_) . " max_fails=1 fail_timeout=10s;\n" }
			0 .. $self->{instances} - 1;
		$site =~ s/^(upstream callstop \{\n)    server [^\n]*\n/$1$servers/m or croak 'no upstream callstop in the site';
		_spew("$d/callstop.conf", $site);
	}

	# The site does "include fastcgi_params;", relative to this nginx.conf.
	if (!-f '/etc/nginx/fastcgi_params' || !copy('/etc/nginx/fastcgi_params', "$d/fastcgi_params")) {
		_spew("$d/fastcgi_params", join '', map { "fastcgi_param $_->[0] $_->[1];\n" } (
			[ QUERY_STRING => '$query_string' ], [ REQUEST_METHOD => '$request_method' ],
			[ CONTENT_TYPE => '$content_type' ], [ CONTENT_LENGTH => '$content_length' ],
			[ SCRIPT_NAME => '$fastcgi_script_name' ], [ REQUEST_URI => '$request_uri' ],
			[ DOCUMENT_URI => '$document_uri' ], [ DOCUMENT_ROOT => '$document_root' ],
			[ SERVER_PROTOCOL => '$server_protocol' ], [ REQUEST_SCHEME => '$scheme' ],
			[ HTTPS => '$https if_not_empty' ], [ GATEWAY_INTERFACE => 'CGI/1.1' ],
			[ SERVER_SOFTWARE => 'nginx/$nginx_version' ], [ REMOTE_ADDR => '$remote_addr' ],
			[ REMOTE_PORT => '$remote_port' ], [ SERVER_ADDR => '$server_addr' ],
			[ SERVER_PORT => '$server_port' ], [ SERVER_NAME => '$server_name' ],
			[ HTTP_HOST => '$host' ]));
	}

	# As root, workers must be root too to reach the callstopd socket inside
	# the (0700) temporary directory; nginx ignores "user" otherwise.
	my $user = $> == 0 ? "user root;\n" : '';
	_spew("$d/nginx.conf", <<"EOF");
# generated by t/lib/CallstopTest.pm
${user}daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log $d/access.log;
    client_body_temp_path $d/client_body_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    proxy_temp_path $d/proxy_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;

    include $d/callstop.conf;
}
EOF
	return;
}

sub _nginx_cmd ($self, @args) {
	my $d = "$self->{tmpdir}/nginx";
	return ($self->{nginx}, '-p', "$d/", '-c', "$d/nginx.conf", '-e', "$d/error.log", @args);
}

sub nginx_check ($self) {
	my ($rc, $out, $err) = $self->_run([ $self->_nginx_cmd('-t') ]);
	return ($rc, $err . $out);
}

sub _start_nginx ($self) {
	my @cmd = $self->_nginx_cmd;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval {
			chdir $self->{tmpdir} or die "chdir: $!\n";
			open(STDIN, '<', '/dev/null') or die "stdin: $!\n";
			open(STDOUT, '>>', "$self->{tmpdir}/nginx/stderr.log") or die "stdout: $!\n";
			open(STDERR, '>&', \*STDOUT) or die "stderr: $!\n";
			exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!\n";
		};
		print STDERR $@;
		_exit(127);
	}
	$self->{nginx_pid} = $pid;

	my $port = $self->{http_port};
	my $ok = $self->wait_until(sub {
		return 'exited' if _waitpid($pid, WNOHANG) == $pid;
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
			Timeout => 1);
		return $s ? 1 : 0;
	}, timeout => $self->{timeout});
	if (!$ok || $ok eq 'exited') {
		delete $self->{nginx_pid} if $ok;
		die "nginx did not start on 127.0.0.1:$port\n" . $self->nginx_log
			. _slurp("$self->{tmpdir}/nginx/stderr.log");
	}
	$self->{base_url} = "https://127.0.0.1:$port";
	$self->{http} = HTTP::Tiny->new(
		agent       => 'callstop-tests/1',
		timeout     => scaled(40),
		verify_SSL  => 1,
		SSL_options => { SSL_ca_file => $self->{cert} },
	);
	return;
}

sub _stop_nginx ($self) {
	my $pid = delete $self->{nginx_pid} or return;
	delete $self->{http};
	kill 'TERM', $pid;    # fast shutdown; the workers exit with the master
	$self->wait_until(sub { _waitpid($pid, WNOHANG) == $pid || !kill(0, $pid) }, timeout => 10)
		or do { kill 'KILL', $pid; _waitpid($pid) };
	return;
}

sub nginx_pid ($self) { return $self->{nginx_pid} }
sub base_url ($self) { return $self->{base_url} }
sub url ($self, $path) { return $self->{base_url} . $path }

# ---- HTTP ---------------------------------------------------------------------------

sub request ($self, $method, $path, %o) {
	croak 'nginx is off' unless $self->{http};
	my %headers = %{ $o{headers} // {} };
	my $body = $o{body};
	if (ref $body) {
		$body = $JSON->encode($body);
		$headers{'Content-Type'} //= 'application/json';
	}
	$headers{'Content-Type'} = $o{content_type} if defined $o{content_type};

	my $http = defined $o{local_address} ? $self->_http_client(local_address => $o{local_address}) : $self->{http};
	local $http->{timeout} = scaled($o{timeout}) if defined $o{timeout};
	my $res = $http->request($method, $self->url($path),
		{ headers => \%headers, defined $body ? (content => $body) : () });

	my %h = map { lc($_) => $res->{headers}{$_} } keys %{ $res->{headers} // {} };
	my $json;
	if (defined $res->{content} && length $res->{content}) {
		$json = eval { $JSON->decode($res->{content}) };
	}
	my $out = {
		status  => $res->{status},
		reason  => $res->{reason},
		headers => \%h,
		body    => $res->{content} // '',
		json    => $json,
	};
	OpenAPICheck::check($method, $path, $out);
	return $out;
}

sub api ($self, $method, $path, %o) {
	my %headers = %{ $o{headers} // {} };
	$headers{'X-API-Key'} = $o{key} if defined $o{key};
	$headers{'X-Frontend-ID'} = $o{frontend} if defined $o{frontend};
	return $self->request($method, $path, headers => \%headers,
		(exists $o{json} ? (body => $o{json}) : exists $o{body} ? (body => $o{body}) : ()),
		(defined $o{content_type} ? (content_type => $o{content_type}) : ()),
		(defined $o{timeout} ? (timeout => $o{timeout}) : ()));
}

# ---- logs and helpers ----------------------------------------------------------------

sub tmpdir ($self) { return $self->{tmpdir} }

sub log ($self) {
	my $t = $self->{tmpdir};
	my $file = $self->{conf_over}{log_file} // "$t/callstopd.log";
	return _slurp($file) . _slurp("$t/callstopd.stderr");
}

sub nginx_log ($self) { return _slurp("$self->{tmpdir}/nginx/error.log") }
sub access_log ($self) { return _slurp("$self->{tmpdir}/nginx/access.log") }
sub pg_log ($self) { return _slurp("$self->{tmpdir}/pg.log") }

# The timeout is scaled here: callers pass the unscaled number.
sub wait_until ($self, $code, %o) {
	my $deadline = time + scaled($o{timeout} // 5);
	my $interval = $o{interval} // 0.05;
	while (1) {
		my $v = $code->();
		return $v if $v;
		return $v if time >= $deadline;
		sleep $interval;
	}
}

# ---- several instances (two hosts behind one upstream) --------------------------------

sub instances ($self) { return $self->{instances} }

sub _instance_listen ($self, $i) {
	return $self->_listen if $i == 0;
	return $self->{inst}[$i]{listen} //= do {
		my %used = map { ($_->{listen} // '') => 1 } grep { defined } @{ $self->{inst} // [] };
		$used{ $self->_listen } = 1;
		my $l;
		do { $l = '127.0.0.1:' . _free_port() } while $used{$l};
		$l;
	};
}

sub instance_conf_file ($self, $i) {
	return $i == 0 ? $self->conf_file : "$self->{tmpdir}/callstopd-$i.conf";
}

# The configuration of instance $i > 0: that of instance 0 with its own
# listen, log file and no pid file.
sub _write_instance_confs ($self, $text) {
	for my $i (1 .. $self->{instances} - 1) {
		my $t = $self->{tmpdir};
		my $conf = $text;
		my $listen = $self->_instance_listen($i);
		$conf =~ s/^listen = .*$/listen = $listen/m;
		$conf =~ s/^pid_file = .*\n//mg;
		$conf =~ s/^log_file = .*$/log_file = $t\/callstopd-$i.log/m
			or $conf =~ s/^\[callstopd\]\n/[callstopd]\nlog_file = $t\/callstopd-$i.log\n/m;
		_spew($self->instance_conf_file($i), $conf);
	}
	return;
}

sub start_instance ($self, $i) {
	return $self->start_callstopd if $i == 0;
	my $inst = $self->{inst}[$i] //= {};
	croak "callstopd instance $i already running" if $inst->{pid};
	my ($pid, $why) = $self->_spawn_callstopd($self->instance_conf_file($i),
		"$self->{tmpdir}/callstopd-$i.stderr", $self->_instance_listen($i), sub ($pid) { $inst->{pid} = $pid });
	if ($why) {
		delete $inst->{pid} if $why =~ /exited/;
		die "callstopd instance $i: $why\n--- its log:\n" . $self->instance_log($i);
	}
	return $pid;
}

sub stop_instance ($self, $i, %o) {
	return $self->stop_callstopd(%o) if $i == 0;
	my $inst = $self->{inst}[$i] or return;
	my $pid = delete $inst->{pid} or return;
	my @children = $self->_children($pid);
	kill $o{signal} // 'TERM', $pid;
	my $gone = $self->wait_until(sub { _waitpid($pid, WNOHANG) == $pid || !kill(0, $pid) },
		timeout => $self->{timeout});
	if (!$gone) {
		kill 'KILL', $pid;
		_waitpid($pid);
	}
	$self->wait_until(sub { !grep { _alive_callstopd($_) } @children }, timeout => 5)
		or kill 'KILL', grep { _alive_callstopd($_) } @children;
	return $gone ? 1 : 0;
}

sub instance_pid ($self, $i) {
	return $i == 0 ? $self->{callstopd_pid} : ($self->{inst}[$i] // {})->{pid};
}

sub instance_log ($self, $i) {
	return $self->log if $i == 0;
	my $t = $self->{tmpdir};
	return _slurp("$t/callstopd-$i.log") . _slurp("$t/callstopd-$i.stderr");
}

sub instance_listen ($self, $i) { return $self->_instance_listen($i) }

# ---- the internal pages, direct FastCGI, process state --------------------------------

# A client of its own, e.g. with local_address => '127.0.0.2'.
sub _http_client ($self, %o) {
	return HTTP::Tiny->new(
		agent       => 'callstop-tests/1',
		timeout     => scaled(40),
		verify_SSL  => 1,
		SSL_options => { SSL_ca_file => $self->{cert} },
		%o,
	);
}

sub status_json ($self) {
	my $r = $self->request(GET => '/callstop-status');
	croak "GET /callstop-status: $r->{status} $r->{body}" unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
	return $r->{json};
}

# The samples of a Prometheus text page: { 'name{labels}' => value }.
sub metrics ($self) {
	my $r = $self->request(GET => '/callstop-metrics');
	croak "GET /callstop-metrics: $r->{status} $r->{body}" unless $r->{status} == 200;
	my %m;
	for (split /\n/, $r->{body}) {
		next if /^#/ || !/\S/;
		my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
		$m{$k} = $v;
	}
	return \%m;
}

sub _fcgi_len ($n) { return $n < 128 ? pack('C', $n) : pack('N', $n | 0x80000000) }

sub fcgi_request ($self, %o) {
	require IO::Socket::UNIX;
	my $listen = $self->_instance_listen($o{instance} // 0);
	my $sock = $listen =~ m{^[/.]}
		? IO::Socket::UNIX->new(Type => IO::Socket::UNIX::SOCK_STREAM(), Peer => $listen)
		: IO::Socket::INET->new(PeerAddr => $listen, Proto => 'tcp');
	croak "fcgi_request: connect $listen: $!" unless $sock;
	my %p = (REQUEST_METHOD => 'GET', DOCUMENT_URI => '/', QUERY_STRING => '', REQUEST_ID => 'fcgi-test',
		%{ $o{params} // {} });
	$p{REQUEST_URI} //= $p{DOCUMENT_URI};
	my $rec = sub ($type, $content) { pack('CCnnCx', 1, $type, 1, length $content, 0) . $content };
	my $params = join '', map { _fcgi_len(length $_) . _fcgi_len(length $p{$_}) . $_ . $p{$_} } sort keys %p;
	my $stdin = $o{body} // '';
	print {$sock} $rec->(1, pack('nCx5', 1, 0)) . $rec->(4, $params) . $rec->(4, '')
		. (length $stdin ? $rec->(5, $stdin) : '') . $rec->(5, '');
	my $out = '';
	my $read = sub ($n) {
		my $buf = '';
		while (length $buf < $n) {
			my $got = sysread($sock, $buf, $n - length $buf, length $buf);
			return undef unless $got;
		}
		return $buf;
	};
	while (defined(my $hdr = $read->(8))) {
		my (undef, $type, undef, $clen, $plen) = unpack('CCnnC', $hdr);
		my $content = $clen + $plen ? $read->($clen + $plen) : '';
		last unless defined $content;
		$out .= substr($content, 0, $clen) if $type == 6;
		last if $type == 3;
	}
	close $sock;
	my ($head, $body) = split /\r\n\r\n/, $out, 2;
	my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head // '';
	my $json = eval { $JSON->decode($body // '') };
	return { status => ($h{status} // '200') =~ /^(\d+)/ ? $1 : 0, headers => \%h, body => $body // '',
		json => $json };
}

# From /proc/PID/status: { uid => [real, effective, saved, fs], gid => [...] }.
sub proc_ids ($self, $pid) {
	my $s = _slurp("/proc/$pid/status") or return undef;
	my ($uid) = $s =~ /^Uid:\s+(.*)$/m;
	my ($gid) = $s =~ /^Gid:\s+(.*)$/m;
	my ($groups) = $s =~ /^Groups:\s*(.*)$/m;
	return { uid => [ split ' ', $uid ], gid => [ split ' ', $gid ], groups => [ split ' ', $groups // '' ] };
}

# ---- load -------------------------------------------------------------------------------

sub load_start ($self, %o) {
	croak 'nginx is off' unless $self->{http};
	my $procs = $o{procs} // 4;
	my $duration = $o{duration} // 5;
	my $make = $o{request} or croak 'load_start: request => sub required';
	my $id = ++$self->{load_seq};
	my $stopfile = "$self->{tmpdir}/load-$id.stop";
	my %load = (id => $id, stopfile => $stopfile, pids => [], files => []);
	for my $k (1 .. $procs) {
		my $file = "$self->{tmpdir}/load-$id-$k.txt";
		push @{ $load{files} }, $file;
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $rc = 0;
			eval {
				open(my $fh, '>', $file) or die "$file: $!";
				$fh->autoflush(1);
				my $http = $self->_http_client;
				my $deadline = time + $duration;
				my $n = 0;
				while (time < $deadline && !-e $stopfile && (!$o{requests} || $n < $o{requests})) {
					my ($method, $path, %ro) = @{ $make->($k, $n++) };
					my %headers = %{ $ro{headers} // {} };
					my $body = $ro{json};
					if (defined $body) {
						$body = $JSON->encode($body);
						$headers{'Content-Type'} //= 'application/json';
					}
					my $t0 = time;
					my $res = $http->request($method, $self->url($path),
						{ headers => \%headers, defined $body ? (content => $body) : () });
					my $snippet = substr($res->{content} // '', 0, 200);
					$snippet =~ s/[\t\n\r]/ /g;
					printf {$fh} "%d\t%.3f\t%s %s\t%s\n", $res->{status}, time - $t0, $method, $path, $snippet;
				}
				close $fh;
				1;
			} or do { print STDERR "load child: $@"; $rc = 1 };
			_exit($rc);
		}
		push @{ $load{pids} }, $pid;
	}
	return \%load;
}

sub load_wait ($self, $load, %o) {
	_spew($load->{stopfile}, '') if $o{stop};
	_waitpid($_) for @{ $load->{pids} };
	my (%by_status, @failed, $total, $max_s);
	$total = 0;
	$max_s = 0;
	my $ok = $o{ok} // sub ($status) { $status >= 200 && $status < 300 };
	for my $file (@{ $load->{files} }) {
		for my $line (split /\n/, _slurp($file)) {
			my ($status, $secs, $what, $body) = split /\t/, $line, 4;
			$total++;
			$by_status{$status}++;
			$max_s = $secs if $secs > $max_s;
			push @failed, "$status $what ($secs s): " . ($body // '') unless $ok->($status);
		}
	}
	return { total => $total, by_status => \%by_status, failed => \@failed, max_seconds => $max_s };
}

# ---- teardown -------------------------------------------------------------------------

sub _tail ($text, $n = 40) {
	my @l = split /\n/, $text;
	splice(@l, 0, @l - $n) if @l > $n;
	return join("\n", @l) . "\n";
}

sub stop ($self) {
	return if $self->{stopped} || $$ != $self->{owner};
	$self->{stopped} = 1;
	delete $LIVE{"$self"};
	local ($?, $!, $@);

	my $tb = Test::More->builder;
	my $failed = !$tb->is_passing || $self->{exit_status} || $DYING;

	eval { $self->_stop_nginx; 1 } or warn $@;
	for my $i (1 .. ($self->{instances} // 1) - 1) {
		eval { $self->stop_instance($i); 1 } or warn $@;
	}
	eval { $self->stop_callstopd; 1 } or warn $@;
	eval { $self->pg_stop; 1 } or warn $@;

	# Every process has exited (a worker's leak report is written at its
	# exit): any report fails the file.
	if (my @reports = $self->sanitizer_reports) {
		$tb->ok(0, 'no sanitizer report (ASan/UBSan, ' . scalar(@reports) . ' found)');
		$tb->diag("--- $_->[0] ---\n" . _tail($_->[1], 80)) for @reports;
		$failed = 1;
	}

	my $t = $self->{tmpdir} or return;
	if ($failed) {
		for ([ 'callstopd log', $self->log ], [ 'nginx error log', $self->nginx_log ],
			[ 'PostgreSQL log', $self->pg_log ])
		{
			next unless length $_->[1];
			$tb->diag("--- $_->[0] (tail) ---\n" . _tail($_->[1]));
		}
	}
	if ($ENV{CALLSTOP_TEST_KEEP}) {
		$tb->diag("CALLSTOP_TEST_KEEP: left $t");
	} else {
		remove_tree($t);
	}
	return;
}

sub DESTROY ($self) {
	$self->stop if $self->{owner} && $$ == $self->{owner};
	return;
}

sub _install_signal_handlers {
	state $done = 0;
	return if $done++;
	# An uncaught die destroys the harness while unwinding, before END sees
	# the exit status: note it so that stop() prints the logs.
	my $prev = $SIG{__DIE__};
	$SIG{__DIE__} = sub {
		$DYING = 1 if defined $^S && !$^S;
		goto &$prev if ref $prev eq 'CODE';
		return;
	};
	# exit runs END, which stops everything; a handler set by the test wins.
	for my $sig (qw(INT TERM HUP)) {
		next if defined $SIG{$sig} && $SIG{$sig} ne '' && $SIG{$sig} ne 'DEFAULT';
		$SIG{$sig} = sub { Test::More::diag("caught SIG$sig, stopping"); exit 1 };
	}
	return;
}

END {
	for my $t (grep { defined } values %LIVE) {
		$t->{exit_status} = $?;    # a die: show the logs
		$t->stop;
	}
}

1;
