#!/usr/bin/perl
# bench.pl - callstopd against its floor, through the same nginx (run by t/bench/run).
#
# One run, everything on 127.0.0.1, stopped at the end (also after a die or ^C):
#
#   1. builds the floor (t/bench/floor.c: a minimal libfcgi + libpq prefork
#      responder running callstopd's SQL) with cc;
#   2. starts PostgreSQL + callstopd + nginx with t/lib/CallstopTest.pm (rate
#      limit lifted), the floor on its own unix socket, and a second copy of
#      the rendered site (another port) in the same nginx pointing at it;
#   3. wrk (-t2 -c16 -d10s --latency) on GET /calls/status/{call} and on a
#      single-call POST /calls/cancel, callstopd and floor alternately (ABBA
#      over the rounds), each cancel of a different running call;
#   3b. the same single-call cancel on callstopd with and without an
#      Idempotency-Key (SPEC 8, a new key each request: t/bench/cancel_key.lua),
#      alternately (ABBA); the keyed one within 15 % of the other;
#   4. a 1 000 000-entry pending batch cancelled through the API, next to the
#      same callstop_cancel() on an identical batch in psql (\timing);
#   5. callstopd restarted, then 200 000 requests (status and cancel
#      alternately), each worker's VmRSS at 0, 100k and 200k requests;
#   6. one table with the numbers and PASS/MISS per target.
#
# Knobs (environment): BENCH_WORKERS (4: callstopd's default; the floor gets
# as many), BENCH_THREADS (2), BENCH_CONNECTIONS (16), BENCH_DURATION (10 s),
# BENCH_ROUNDS (3; the median round of each side is reported), BENCH_BATCH
# (1000000), BENCH_RSS_REQUESTS (200000), BENCH_RSS_FLAT_KIB (128: the most a
# worker may grow between the two halves of the RSS run and still be "flat"),
# BENCH_NGINX_WORKERS (the harness's 1 unless set), BENCH_SKIP (comma list of
# phases to skip: throughput, idempotency, batch, rss).  CALLSTOP_BUILDDIR / CALLSTOP_SRCDIR
# as for the tests; CALLSTOP_TEST_KEEP keeps the temporary directory.

use v5.36;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
my $BENCHDIR;
BEGIN {
	$BENCHDIR = abs_path(dirname(__FILE__));
	$ENV{CALLSTOP_SRCDIR} //= abs_path("$BENCHDIR/../..");
	$ENV{CALLSTOP_BUILDDIR} //= $ENV{CALLSTOP_SRCDIR};
}
use lib "$ENV{CALLSTOP_SRCDIR}/t/lib";
# Loaded before our END block is compiled, so that ours (the floor, wrk) runs
# first and the harness's (nginx, callstopd, PostgreSQL) after it.
use CallstopTest;

use File::Path qw(make_path);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use List::Util qw(max min sum);
use POSIX qw(WNOHANG _exit ceil);
use Time::HiRes qw(time sleep);

my $SRCDIR = $ENV{CALLSTOP_SRCDIR};
my $BUILDDIR = $ENV{CALLSTOP_BUILDDIR};

my %K = (
	workers       => $ENV{BENCH_WORKERS}       // 4,
	threads       => $ENV{BENCH_THREADS}       // 2,
	connections   => $ENV{BENCH_CONNECTIONS}   // 16,
	duration      => $ENV{BENCH_DURATION}      // 10,
	rounds        => $ENV{BENCH_ROUNDS}        // 3,
	batch         => $ENV{BENCH_BATCH}         // 1_000_000,
	rss_requests  => $ENV{BENCH_RSS_REQUESTS}  // 200_000,
	rss_flat_kib  => $ENV{BENCH_RSS_FLAT_KIB}  // 128,
	nginx_workers => $ENV{BENCH_NGINX_WORKERS},
);
my %SKIP = map { $_ => 1 } split /,/, $ENV{BENCH_SKIP} // '';

# Targets (the issue): both routes at >= 80% of the floor's requests/s, the
# 1 M batch cancel within 1.5x psql, worker RSS flat and under 16 MiB.
my $RPS_RATIO_MIN = 0.80;
my $BATCH_RATIO_MAX = 1.5;
my $RSS_MAX_KIB = 16 * 1024;
my $KEY_RATIO_MIN = 0.85;    # SPEC 8: a keyed cancel within 15 % of one without

my $JSON = JSON::PP->new->utf8->canonical;
my (%CHILD, $t);    # pids we started (floor, wrk): stopped in END

sub note (@msg) { printf STDERR "# %s\n", join '', @msg; return }

# ^C etc.: exit, so that END (ours, then the harness's) stops everything.
for my $sig (qw(INT TERM HUP)) {
	$SIG{$sig} = sub { note("caught SIG$sig, stopping"); exit 1 };
}

END {
	my $status = $?;
	for my $pid (grep { $CHILD{$_} } keys %CHILD) {
		kill 'TERM', $pid;
		my $deadline = time + 5;
		sleep 0.05 while waitpid($pid, WNOHANG) == 0 && time < $deadline;
		if (kill 0, $pid) { kill 'KILL', $pid; waitpid($pid, 0) }
	}
	$? = $status;
}

for my $tool (qw(wrk cc)) {
	system("command -v $tool >/dev/null 2>&1") == 0 or die "bench: $tool not found (apt-get install $tool)\n";
}

# ---- helpers ----------------------------------------------------------------------

sub slurp ($file) {
	open(my $fh, '<', $file) or return '';
	local $/;
	return scalar(<$fh>) // '';
}

sub spew ($file, $text, $mode = '>') {
	open(my $fh, $mode, $file) or die "write $file: $!";
	print {$fh} $text;
	close $fh or die "close $file: $!";
	return;
}

sub free_port () {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
		ReuseAddr => 1) or die "cannot bind a free port: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

# Run a command with %env added, output (stdout + stderr) to $out; give up
# after $timeout s (SIGINT, then SIGKILL).  $poll->($pid) is called every
# 50 ms while it runs.  Returns (exit code, output).
sub run_cmd ($cmd, %o) {
	my $out = $o{out} // ($t ? $t->tmpdir : '/tmp') . "/cmd-$$.out";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $out) or _exit(127);
		open(STDERR, '>&', \*STDOUT) or _exit(127);
		$ENV{$_} = $o{env}{$_} for keys %{ $o{env} // {} };
		exec { $cmd->[0] } @$cmd or print STDERR "exec $cmd->[0]: $!\n";
		_exit(127);
	}
	$CHILD{$pid} = 1;
	my $deadline = time + ($o{timeout} // 120);
	my ($sent_int, $rc);
	while (1) {
		my $r = waitpid($pid, WNOHANG);
		if ($r == $pid) { $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8; last }
		$o{poll}->($pid) if $o{poll};
		if (time > $deadline) {
			if (!$sent_int) { kill 'INT', $pid; $sent_int = 1; $deadline = time + 5 }
			else { kill 'KILL', $pid }
		}
		sleep 0.05;
	}
	delete $CHILD{$pid};
	my $text = slurp($out);
	unlink $out unless $o{out};
	note("$cmd->[0] timed out") if $sent_int;
	return ($rc, $text);
}

sub to_ms ($v, $unit) {
	return $v * { us => 0.001, ms => 1, s => 1000, m => 60000 }->{$unit};
}

# The numbers of a wrk --latency run.
sub parse_wrk ($text) {
	my %r;
	($r{rps}) = $text =~ /^Requests\/sec:\s+([\d.]+)/m;
	if ($text =~ /^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)/m) {
		$r{requests} = $1;
		$r{seconds} = to_ms($2, $3) / 1000;
	}
	for my $p (50, 99) {
		$r{"p$p"} = to_ms($1, $2) if $text =~ /^\s+$p(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$/m;
	}
	$r{non2xx} = $text =~ /Non-2xx or 3xx responses: (\d+)/ ? $1 : 0;
	$r{sockerr} = $text =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
		? $1 + $2 + $3 + $4 : 0;
	$r{wrapped} = $text =~ /BENCH wrapped=(\d+)/ ? $1 : 0;
	die "cannot parse wrk output:\n$text" unless defined $r{rps} && defined $r{p50} && defined $r{p99};
	return \%r;
}

sub wrk ($url, %o) {
	my @cmd = ('wrk', '-t', $K{threads}, '-c', $K{connections}, '-d', ($o{duration} // $K{duration}) . 's',
		'--latency', '--timeout', '10s', @{ $o{args} // [] }, $url);
	my ($rc, $out) = run_cmd(\@cmd, env => { BENCH_LUA_DIR => $BENCHDIR, BENCH_THREADS => $K{threads},
			%{ $o{env} // {} } },
		timeout => ($o{duration} // $K{duration}) + 60, poll => $o{poll});
	die "wrk failed (exit $rc): @cmd\n$out" if $rc != 0;
	my $r = parse_wrk($out);
	$r->{raw} = $out;
	return $r;
}

sub vmrss_kib ($pid) {
	return slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+) kB/m ? $1 : undef;
}

sub psql_timed ($sql) {
	my $file = $t->tmpdir . '/timed.sql';
	spew($file, "\\timing on\n$sql\n");
	my $t0 = time;
	my ($rc, $out) = run_cmd([ $t->{psql}, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $t->conninfo, '-f', $file ],
		timeout => 900);
	my $wall = time - $t0;
	die "psql failed (exit $rc):\n$out" if $rc != 0;
	my ($ms) = $out =~ /^Time: ([\d.]+) ms/m or die "no \\timing in psql output:\n$out";
	return ($ms / 1000, $wall, $out);
}

# ---- build the floor -----------------------------------------------------------------

my $floor_bin = "$BUILDDIR/t/bench/floor";
{
	make_path(dirname($floor_bin));
	my $flags = `pkg-config --cflags --libs fcgi libpq libcrypto 2>/dev/null`;
	if ($? != 0 || $flags !~ /\S/) {
		my $inc = `pg_config --includedir 2>/dev/null` // '';
		chomp $inc;
		$flags = ($inc ? "-I$inc " : '') . '-lfcgi -lpq -lcrypto';
	}
	chomp $flags;
	my $cmd = "cc -O2 -Wall -o '$floor_bin' '$BENCHDIR/floor.c' $flags";
	note("building the floor: $cmd");
	system($cmd) == 0 or die "bench: cannot build the floor\n";
}

# ---- start everything ------------------------------------------------------------------

note("starting PostgreSQL, callstopd ($K{workers} workers) and nginx");
$t = CallstopTest->new(workers => $K{workers}, nginx => { RATE => '1000000r/s', BURST => 100000 }, timeout => 30);
my $tmp = $t->tmpdir;
my $tenant_id = $t->tenant('bench', workspace_id => 'ws-bench');
my $key = $t->key(tenant => 'bench', frontend_id => 'web');
my $key_id = $t->psql_value("SELECT max(id) FROM api_keys WHERE tenant_id = $tenant_id");

# The floor, on its own socket, as many workers, the same key cache period.
my $floor_sock = "$tmp/floor.sock";
my $floor_pid;
{
	$floor_pid = fork // die "fork: $!";
	if ($floor_pid == 0) {
		$SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', "$tmp/floor.log") or _exit(127);
		open(STDERR, '>&', \*STDOUT) or _exit(127);
		exec { $floor_bin } $floor_bin, $floor_sock, $t->conninfo, $K{workers}, 1000
			or print STDERR "exec $floor_bin: $!\n";
		_exit(127);
	}
	$CHILD{$floor_pid} = 1;
	$t->wait_until(sub { -S $floor_sock || waitpid($floor_pid, WNOHANG) == $floor_pid }, timeout => 10);
	-S $floor_sock && kill(0, $floor_pid) or die "the floor did not start:\n" . slurp("$tmp/floor.log");
}

# nginx: a second copy of the rendered site (its server{} only: the maps and
# zones are http-level and shared) on another port, to the floor's socket.
my ($dport) = $t->base_url =~ /:(\d+)$/;
my $fport = free_port();
{
	my $d = "$tmp/nginx";
	my $site = slurp("$d/callstop.conf");
	my ($server) = $site =~ /^(server \{.*)\z/ms or die "no server{} in $d/callstop.conf";
	$server =~ s/^(\s*listen\s+)127\.0\.0\.1:$dport\b/${1}127.0.0.1:$fport/m or die 'no listen line in the site';
	my $n = $server =~ s/fastcgi_pass\s+[^;]+;/fastcgi_pass unix:$floor_sock;/g or die 'no fastcgi_pass in the site';
	spew("$d/callstop.conf", "\n# ---- t/bench: the same site in front of the floor ----\n$server", '>>');
	if (defined $K{nginx_workers}) {
		my $conf = slurp("$d/nginx.conf");
		$conf =~ s/^worker_processes .*;$/worker_processes $K{nginx_workers};/m;
		spew("$d/nginx.conf", $conf);
	}
	my ($rc, $out) = $t->nginx_check;
	die "nginx -t failed with the floor's server:\n$out" if $rc != 0;
	kill 'HUP', $t->nginx_pid;
	$t->wait_until(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $fport, Timeout => 1) },
		timeout => 10) or die "nginx did not listen on $fport after reload:\n" . $t->nginx_log;
	sleep 0.5;    # the old workers finish
}

my %BASE = (callstopd => $t->base_url, floor => "https://127.0.0.1:$fport");
my $http = HTTP::Tiny->new(timeout => 900, verify_SSL => 1,
	SSL_options => { SSL_ca_file => "$tmp/nginx/cert.pem" }, agent => 'callstop-bench/1');

sub api ($who, $method, $path, $body = undef) {
	my %h = ('X-API-Key' => $key, 'X-Frontend-ID' => 'web');
	$h{'Content-Type'} = 'application/json' if defined $body;
	my $r = $http->request($method, $BASE{$who} . $path,
		{ headers => \%h, defined $body ? (content => $JSON->encode($body)) : () });
	$r->{json} = eval { $JSON->decode($r->{content}) } if length($r->{content} // '');
	return $r;
}

# ---- data -----------------------------------------------------------------------------

# The call whose status is read: cancelled, with a LiveKit room and an OpenAI
# call, so that the answer has two termination targets (written as failed:
# no provider is configured, and none is contacted during the benchmark).
my $status_id = $t->psql_value(<<~"SQL");
	INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, livekit_room, openai_call_id, started_at)
	VALUES ($tenant_id, 'bench-status', '+15550000001', 'running', 'room-bench-status', 'rtc_bench_status',
	        now() - interval '1 minute') RETURNING id
	SQL
$t->psql("SELECT count(*) FROM callstop_cancel($tenant_id, ARRAY['call'], ARRAY['$status_id'], false,"
	. " 'bench.setup', NULL, NULL, 'cancelled', ARRAY[]::text[])");

# $n running calls (each with a LiveKit room, so that a cancel writes an
# outbox row), tagged by agent_id; their ids in a file.
my $pools = 0;
sub make_pool ($name, $n) {
	my $rows = $t->psql(<<~"SQL");
		INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, livekit_room, started_at)
		SELECT $tenant_id, 'pool-$name', '+1555' || lpad(g::text, 7, '0'), 'running', 'room-$name-' || g,
		       now() - interval '1 minute'
		FROM generate_series(1, $n) g RETURNING id
		SQL
	my $file = "$tmp/ids-$name";
	spew($file, join('', map { "$_->[0]\n" } @$rows));
	$pools++;
	return $file;
}

sub pool_cancelled ($name) {
	return $t->psql_value("SELECT count(*) FROM voice_call_logs WHERE tenant_id = $tenant_id"
		. " AND agent_id = 'pool-$name' AND status = 'cancelled'");
}

# ---- sanity: both sides answer as expected ----------------------------------------------

for my $who (qw(callstopd floor)) {
	my $r = api($who, GET => "/calls/status/$status_id");
	$r->{status} == 200 && ($r->{json}{status} // '') eq 'cancelled'
		or die "$who: GET status: $r->{status} $r->{content}\n" . slurp("$tmp/floor.log") . $t->nginx_log;
	my $file = make_pool("sanity-$who", 1);
	my ($id) = slurp($file) =~ /(\S+)/;
	$r = api($who, POST => '/calls/cancel', { resource_id => $id, force => JSON::PP::false });
	$r->{status} == 200 && ($r->{json}{status} // '') eq 'cancelled' && pool_cancelled("sanity-$who") == 1
		or die "$who: POST cancel: $r->{status} $r->{content}\n";
}
note('sanity: status and cancel answer 200 on callstopd and the floor');

# ---- 1. requests/s and latency ------------------------------------------------------------

my %TP;    # {route}{who} = [ wrk results per round ]
my @HEADERS = ('-H', "X-API-Key: $key", '-H', 'X-Frontend-ID: web');
unless ($SKIP{throughput}) {
	for my $who (qw(callstopd floor)) {    # warm-up: connections, prepared statements, caches
		wrk("$BASE{$who}/calls/status/$status_id", duration => 2, args => \@HEADERS);
	}
	for my $route (qw(status cancel)) {
		for my $round (1 .. $K{rounds}) {
			for my $who ($round % 2 ? qw(callstopd floor) : qw(floor callstopd)) {
				$t->psql('CHECKPOINT');
				my $r;
				if ($route eq 'status') {
					$r = wrk("$BASE{$who}/calls/status/$status_id", args => \@HEADERS);
				} else {
					# enough running calls that no id is cancelled twice
					# (from the cancel runs so far, else half the best status rate)
					my @done = map { $_->{rps} } map { @$_ } values %{ $TP{cancel} // {} };
					my $rate = @done ? 1.5 * max(@done)
						: 0.5 * (max(map { $_->{rps} } map { @$_ } values %{ $TP{status} // {} }) // 10000);
					my $n = min(1_000_000, max(5000, ceil($rate * $K{duration} * 1.3)));
					my $name = "$who-$round";
					my $file = make_pool($name, $n);
					$r = wrk("$BASE{$who}/", args => [ '-s', "$BENCHDIR/cancel.lua" ],
						env => { BENCH_KEY => $key, BENCH_FRONTEND => 'web', BENCH_IDS => $file });
					$r->{cancelled} = pool_cancelled($name);
					$r->{pool} = $n;
				}
				push @{ $TP{$route}{$who} }, $r;
				note(sprintf('%-6s %-9s round %d: %8.1f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests%s%s%s)',
					$route, $who, $round, @{$r}{qw(rps p50 p99 requests)},
					$r->{non2xx} ? ", $r->{non2xx} non-2xx" : '', $r->{sockerr} ? ", $r->{sockerr} socket errors" : '',
					defined $r->{cancelled} ? ", $r->{cancelled} calls cancelled of $r->{pool}" : ''));
				sleep 1;
			}
		}
	}
}

# ---- 1b. the cancel with and without an Idempotency-Key ----------------------------------------

my %IK;    # {plain|key} = [ wrk results per round ]
unless ($SKIP{idempotency}) {
	for my $round (1 .. $K{rounds}) {
		for my $how ($round % 2 ? qw(plain key) : qw(key plain)) {
			$t->psql('CHECKPOINT');
			my @done = map { $_->{rps} } map { @$_ } values %IK, values %{ $TP{cancel} // {} };
			my $n = min(1_000_000, max(5000, ceil((@done ? 1.5 * max(@done) : 2000) * $K{duration} * 1.3)));
			my $name = "ik-$how-$round";
			my $file = make_pool($name, $n);
			my $r = wrk("$BASE{callstopd}/", args => [ '-s', "$BENCHDIR/" . ($how eq 'key' ? 'cancel_key' : 'cancel') . '.lua' ],
				env => { BENCH_KEY => $key, BENCH_FRONTEND => 'web', BENCH_IDS => $file, BENCH_KEY_PREFIX => $name });
			$r->{cancelled} = pool_cancelled($name);
			$r->{pool} = $n;
			push @{ $IK{$how} }, $r;
			note(sprintf('cancel %-5s round %d: %8.1f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests%s, %d calls cancelled)',
				$how eq 'key' ? 'key' : 'plain', $round, @{$r}{qw(rps p50 p99 requests)},
				$r->{non2xx} ? ", $r->{non2xx} non-2xx" : '', $r->{cancelled}));
			sleep 1;
		}
	}
	note('keys stored: ', $t->psql_value('SELECT count(*) FROM callstop_idempotency'));
}

# ---- 2. the 1 M batch: API next to psql ---------------------------------------------------------

my %B;
unless ($SKIP{batch}) {
	my $n = $K{batch};
	# No autovacuum during the two cancels: one of them would otherwise race a
	# vacuum of the other's million dead rows.
	$t->psql('ALTER TABLE voice_call_batch_entries SET (autovacuum_enabled = off)');
	for my $which (qw(api psql)) {
		my $t0 = time;
		my $id = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id)"
			. " VALUES ($tenant_id, 'batch-bench-$which') RETURNING id");
		$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number)"
			. " SELECT '$id', '+1555' || lpad(g::text, 7, '0') FROM generate_series(1, $n) g");
		$B{"insert_$which"} = time - $t0;
		note(sprintf('batch-bench-%s: %d pending entries inserted in %.1f s', $which, $n, $B{"insert_$which"}));
	}
	$t->psql('VACUUM ANALYZE voice_call_batch_entries');
	$t->psql('ANALYZE voice_call_batches');
	$t->psql('CHECKPOINT');

	# Through nginx and callstopd.
	my $t0 = time;
	my $r = api(callstopd => POST => '/calls/cancel',
		{ resource_id => 'batch-bench-api', force => JSON::PP::false });
	$B{api} = time - $t0;
	$B{api_status} = $r->{status};
	$B{api_count} = $r->{json}{total_cancelled};
	if ($r->{status} != 200) {
		# e.g. 504 from nginx (fastcgi_read_timeout): time the commit instead
		note("API batch cancel answered $r->{status} after ", sprintf('%.1f s', $B{api}), ": $r->{content}");
		$t->wait_until(sub { ($t->psql_value("SELECT status FROM voice_call_batches WHERE job_id = 'batch-bench-api'")
				// '') eq 'cancelled' }, timeout => 900, interval => 0.2);
		$B{api_commit} = time - $t0;
	}
	note(sprintf('API cancel of batch-bench-api: %.2f s, status %s, total_cancelled %s',
		$B{api}, $r->{status}, $B{api_count} // '?'));
	$t->psql('CHECKPOINT');

	# The same function in psql.
	my ($secs, $wall, $out) = psql_timed("SELECT * FROM callstop_cancel($tenant_id, ARRAY['batch'],"
		. " ARRAY['batch-bench-psql'], false, 'calls.cancel', $key_id, 'bench-psql', 'cancelled', ARRAY[]::text[]);");
	$B{psql} = $secs;
	$B{psql_wall} = $wall;
	($B{psql_count}) = $out =~ /^1\|batch\|cancelled\|cancelled\|(\d+)\|/m;
	note(sprintf('psql callstop_cancel of batch-bench-psql: %.2f s (\\timing), %.2f s wall, cancelled %s',
		$secs, $wall, $B{psql_count} // '?'));
	$t->psql('ALTER TABLE voice_call_batch_entries RESET (autovacuum_enabled)');
}

# ---- 3. worker RSS over 200 000 requests ---------------------------------------------------------

my %RSS;    # {pid} = [ kib at 0, half, all ]
my @RSSRUN;
unless ($SKIP{rss}) {
	note('restarting callstopd for the RSS run (max_requests = 0: the same workers serve all 200 000)');
	my $log_before = length $t->log;
	$t->restart_callstopd(conf => { max_requests => 0 });
	my @pids;
	$t->wait_until(sub {
		my $log = substr($t->log, $log_before);
		my ($retry) = $log =~ /retry child \(pid (\d+)\) started/;
		@pids = grep { !defined $retry || $_ != $retry } $t->worker_pids;
		return defined $retry && @pids == $K{workers};
	}, timeout => 10) or die "cannot tell the $K{workers} workers of callstopd:\n" . $t->log;
	sleep 1;    # each worker connects to PostgreSQL at start
	$RSS{$_} = [ vmrss_kib($_) ] for @pids;

	my $total = $K{rss_requests};
	my $half = int($total / 2);
	for my $phase (1, 2) {
		my $n = $phase == 1 ? $half : $total - $half;
		my $limit = ceil($n / $K{threads});
		my $file = make_pool("rss-$phase", ceil($n / 2) + $K{connections} + 100);
		my $flag = "$tmp/rss-flag-$phase";
		my $r = wrk("$BASE{callstopd}/", duration => 900, args => [ '-s', "$BENCHDIR/mixed.lua" ],
			env => { BENCH_KEY => $key, BENCH_FRONTEND => 'web', BENCH_IDS => $file,
				BENCH_STATUS_ID => $status_id, BENCH_LIMIT => $limit, BENCH_FLAG => $flag },
			poll => sub ($pid) {
				kill 'INT', $pid if $K{threads} == grep { -e "$flag.$_" } 0 .. $K{threads} - 1;
			});
		push @RSSRUN, $r;
		push @{ $RSS{$_} }, vmrss_kib($_) for @pids;
		note(sprintf('RSS run %d: %d requests at %.1f req/s (%d non-2xx); VmRSS kB: %s', $phase,
			$r->{requests}, $r->{rps}, $r->{non2xx}, join(' ', map { $RSS{$_}[-1] // '?' } @pids)));
	}
	my @gone = grep { !kill 0, $_ } @pids;
	note("workers gone during the RSS run: @gone (crashed? see the callstopd log)") if @gone;
}

# ---- the table ----------------------------------------------------------------------------------

my @MISS;
sub verdict ($ok, $what) {
	push @MISS, $what unless $ok;
	return $ok ? 'PASS' : 'MISS';
}

# The median round by requests/s (the lower middle one of an even count):
# one lucky or unlucky round on a shared machine moves neither side.
sub median_run ($runs) {
	my @by = sort { $a->{rps} <=> $b->{rps} } @$runs;
	return $by[ int($#by / 2) ];
}

my $load = (split ' ', slurp('/proc/loadavg'))[0] // '?';
my $cores = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
my $line = '-' x 118;
print "\n";
printf "callstop benchmark: %d cores (load %s at the end), %d callstopd / floor workers, wrk -t%d -c%d -d%ds,"
	. " median of %d round(s)\n", $cores, $load, $K{workers}, $K{threads}, $K{connections}, $K{duration}, $K{rounds};
print "$line\n";
printf "%-30s %-27s %-27s %-9s %-10s %s\n", '', 'callstopd', 'floor', 'ratio', 'target', 'result';
printf "%-30s %-27s %-27s\n", '', 'req/s    p50 ms   p99 ms', 'req/s    p50 ms   p99 ms';
print "$line\n";
for my $route (qw(status cancel)) {
	next unless $TP{$route};
	my ($d, $f) = map { median_run($TP{$route}{$_}) } qw(callstopd floor);
	my $ratio = $f->{rps} ? $d->{rps} / $f->{rps} : 0;
	my $label = $route eq 'status' ? 'GET /calls/status/{call}' : 'POST /calls/cancel (1 call)';
	printf "%-30s %-27s %-27s %-9s %-10s %s\n", $label,
		sprintf('%7.0f %8.2f %8.2f', @{$d}{qw(rps p50 p99)}), sprintf('%7.0f %8.2f %8.2f', @{$f}{qw(rps p50 p99)}),
		sprintf('%.2f', $ratio), sprintf('>= %.2f', $RPS_RATIO_MIN),
		verdict($ratio >= $RPS_RATIO_MIN, "$route requests/s at " . sprintf('%.0f%%', 100 * $ratio) . ' of the floor');
}
if (%IK) {
	my ($p, $k) = map { median_run($IK{$_}) } qw(plain key);
	my $ratio = $p->{rps} ? $k->{rps} / $p->{rps} : 0;
	printf "%-30s %-27s %-27s %-9s %-10s %s\n", 'cancel with Idempotency-Key',
		sprintf('%7.0f %8.2f %8.2f', @{$k}{qw(rps p50 p99)}), sprintf('%7.0f %8.2f %8.2f  (no key)', @{$p}{qw(rps p50 p99)}),
		sprintf('%.2f', $ratio), sprintf('>= %.2f', $KEY_RATIO_MIN),
		verdict($ratio >= $KEY_RATIO_MIN, 'keyed cancel at ' . sprintf('%.0f%%', 100 * $ratio) . ' of the plain one');
}
if (%B) {
	my $api = $B{api_commit} // $B{api};
	my $ratio = $B{psql} ? $api / $B{psql} : 0;
	my $ok = $B{api_status} == 200 && ($B{api_count} // -1) == $K{batch} && ($B{psql_count} // -1) == $K{batch};
	printf "%-30s %-27s %-27s %-9s %-10s %s\n", sprintf('cancel a %d-entry batch', $K{batch}),
		sprintf('API %.2f s%s', $api, $B{api_status} == 200 ? '' : " (HTTP $B{api_status})"),
		sprintf('psql %.2f s', $B{psql}), sprintf('%.2f', $ratio), sprintf('<= %.2f', $BATCH_RATIO_MAX),
		verdict($ok && $ratio <= $BATCH_RATIO_MAX, sprintf('batch cancel at %.2fx psql%s', $ratio,
			$ok ? '' : ' (or a wrong count / status)'));
}
if (%RSS) {
	my @pids = sort { $a <=> $b } keys %RSS;
	my $n = $K{rss_requests};
	my $done = sum(map { $_->{requests} } @RSSRUN);
	print "$line\n";
	printf "worker VmRSS, KiB, at 0 / %dk / %dk requests (%d served through nginx, status + cancel)\n",
		int($n / 2000), int($n / 1000), $done;
	my ($maxrss, $maxgrow) = (0, 0);
	for my $pid (@pids) {
		my @v = @{ $RSS{$pid} };
		my $grow = defined $v[2] && defined $v[1] ? $v[2] - $v[1] : 1e9;
		$maxrss = max($maxrss, grep { defined } @v);
		$maxgrow = max($maxgrow, $grow);
		printf "  worker pid %-8d %8s %8s %8s   (+%s KiB over the second half)\n", $pid,
			map({ $_ // 'gone' } @v[0 .. 2]), $grow;
	}
	my $ok_max = $maxrss < $RSS_MAX_KIB;
	my $ok_flat = $maxgrow <= $K{rss_flat_kib};
	printf "%-30s %-27s %-27s %-9s %-10s %s\n", 'worker RSS: max', sprintf('%d KiB', $maxrss), '', '',
		sprintf('< %d KiB', $RSS_MAX_KIB), verdict($ok_max, "worker RSS $maxrss KiB");
	printf "%-30s %-27s %-27s %-9s %-10s %s\n", sprintf('worker RSS: growth %dk->%dk', int($n / 2000), int($n / 1000)), sprintf('max +%d KiB', $maxgrow),
		'', '', sprintf('<= %d KiB', $K{rss_flat_kib}), verdict($ok_flat, "worker RSS grew $maxgrow KiB");
}
print "$line\n";

# What would make a number meaningless.
my @warn;
for my $route (keys %TP, map { "idempotency-$_" } keys %IK) {
	for my $who ($route =~ /^idempotency-/ ? ('callstopd') : keys %{ $TP{$route} }) {
		for my $r ($route =~ /^idempotency-(.*)/ ? @{ $IK{$1} } : @{ $TP{$route}{$who} }) {
			push @warn, "$route/$who: $r->{non2xx} non-2xx answers" if $r->{non2xx};
			push @warn, "$route/$who: $r->{sockerr} socket errors" if $r->{sockerr};
			push @warn, "$route/$who: the id list wrapped ($r->{wrapped}x): some cancels found terminal calls"
				if $r->{wrapped};
		}
	}
}
push @warn, "RSS run: $_->{non2xx} non-2xx answers" for grep { $_->{non2xx} } @RSSRUN;
my $errors = () = $t->log =~ /\berror\b/gi;
push @warn, "callstopd logged $errors line(s) with 'error'" if $errors;
my $floor_log = slurp("$tmp/floor.log");
push @warn, 'floor: ' . (split /\n/, $floor_log)[0] if $floor_log =~ /\S/;
print "note: $_\n" for @warn;
print @MISS ? "MISSED: " . join('; ', @MISS) . "\n" : "all targets met\n";
print "(numbers are noisy when other work shares the machine: the 1-minute load average above)\n";
exit(@MISS ? 1 : 0);
