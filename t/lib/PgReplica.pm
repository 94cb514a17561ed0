package PgReplica;
# A streaming-replication standby of a CallstopTest's PostgreSQL, made
# synchronous, for the failover test (doc/several-hosts.md).  Modelled on
# CallstopTest's pg_start: unix socket only, in the same socket directory,
# on a port of its own.
#
#   my $sb = PgReplica->start($t);      # pg_basebackup, start, wait streaming
#   $sb->make_synchronous;              # the primary waits for it at commit
#   $sb->promote;                       # pg_ctl promote -w
#   $sb->psql_value($sql); $sb->port; $sb->stop;

use v5.36;
use Carp qw(croak);
use File::Basename qw(dirname);

sub start ($class, $t, %o) {
	my $tmp = $t->tmpdir;
	my $self = bless { t => $t, dir => "$tmp/pg-standby", port => CallstopTest::_free_port(),
		name => $o{name} // 'standby1', bindir => dirname($t->{pg_ctl}) }, $class;
	mkdir $self->{dir}, 0700 or croak "$self->{dir}: $!";
	if ($> == 0) {
		my @pw = getpwnam('callstop') or croak 'no user callstop';
		chown $pw[2], $pw[3], $self->{dir} or croak "chown: $!";
	}
	$t->_run_ok([ $t->_as_pg("$self->{bindir}/pg_basebackup", '-D', $self->{dir}, '-h', "$tmp/run",
		'-p', $t->pg_port, '-U', 'postgres', '-X', 'stream', '--no-sync', '-c', 'fast') ], 'pg_basebackup');
	# standby.signal and primary_conninfo, written as the cluster owner
	my $conninfo = "host=$tmp/run port=" . $t->pg_port . " user=postgres application_name=$self->{name}";
	$t->_run_ok([ $t->_as_pg('sh', '-c', 'touch "$1/standby.signal" && printf "%s\n" "$2" >>"$1/postgresql.auto.conf"',
		'sh', $self->{dir}, "primary_conninfo = '$conninfo'") ], 'standby configuration');
	$self->{running} = 1;
	$t->_run_ok([ $t->_as_pg($t->{pg_ctl}, '-D', $self->{dir}, '-l', "$tmp/pg-standby.log", '-o',
		"-k $tmp/run -p $self->{port} -c listen_addresses='' -c fsync=off -c full_page_writes=off",
		'-w', '-t', 60, 'start') ], 'pg_ctl start (standby)');
	$t->wait_until(sub { ($t->psql_value("SELECT state FROM pg_stat_replication WHERE application_name = "
		. "'$self->{name}'") // '') eq 'streaming' }, timeout => 60)
		or croak 'the standby is not streaming';
	return $self;
}

sub port ($self) { return $self->{port} }
sub log ($self) { return CallstopTest::_slurp("$self->{t}{tmpdir}/pg-standby.log") }

# The primary waits at every commit of the database callstop until this
# standby has flushed it.  The harness starts PostgreSQL with
# synchronous_commit=off on its command line, which only a database or role
# setting overrides.
sub make_synchronous ($self) {
	my $t = $self->{t};
	$t->psql("ALTER SYSTEM SET synchronous_standby_names = '$self->{name}'");
	$t->psql('SELECT pg_reload_conf()');
	$t->psql('ALTER DATABASE callstop SET synchronous_commit = on');
	$t->wait_until(sub { ($t->psql_value("SELECT sync_state FROM pg_stat_replication WHERE application_name = "
		. "'$self->{name}'") // '') eq 'sync' }, timeout => 30)
		or croak 'the standby is not synchronous';
	return;
}

sub promote ($self) {
	my $t = $self->{t};
	$t->_run_ok([ $t->_as_pg($t->{pg_ctl}, '-D', $self->{dir}, '-w', '-t', 60, 'promote') ], 'pg_ctl promote');
	return;
}

sub psql_value ($self, $sql) {
	my $t = $self->{t};
	my $out = $t->_run_ok([ $t->{psql}, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d',
		"host=$t->{tmpdir}/run port=$self->{port} dbname=callstop user=postgres", '-c', $sql ], 'psql (standby)');
	chomp $out;
	return $out;
}

sub stop ($self) {
	return unless delete $self->{running};
	my $t = $self->{t};
	$t->_run([ $t->_as_pg($t->{pg_ctl}, '-D', $self->{dir}, '-m', 'immediate', '-w', '-t', 30, 'stop') ]);
	return;
}

sub DESTROY ($self) { $self->stop if $self->{running} && $self->{t} }

1;
