#!/usr/bin/perl
# SPEC 4.1, the Heppu-style calls API, end to end through nginx:
#   DELETE /api/v1/calls/{callId}   cancel one call (200/400/401/403/404)
#   GET    /api/v1/calls/{callId}   one call in Heppu's field names
#   GET    /api/v1/calls            the list: agentId, status (Heppu names),
#                                   startDate/endDate, page/limit, newest first
# Every body is compared whole (is_deeply); "nothing changed" is a snapshot of
# the tables before and after.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup q_ key_id from_callstopd);
use Fixtures qw(fx_snapshot);
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

# LiveKit is configured, at a loopback port where nothing listens: deleting
# a room fails (connection refused), as SPEC 4.1's "if that fails" says.
my $t = CallstopTest->new(workers => 2, callstopd_off => 1);
{
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
		or die "bind: $!";
	my $dead = $s->sockport;
	close $s;
	my $secret = $t->tmpdir . '/livekit.secret';
	open(my $fh, '>', $secret) or die "$secret: $!";
	print {$fh} "secret-of-a-livekit-that-is-down\n";
	close $fh;
	chmod 0600, $secret;
	$t->write_conf(conf => { 'livekit.url' => "http://127.0.0.1:$dead", 'livekit.api_key' => 'APIdown',
		'livekit.api_secret_file' => $secret });
	$t->start_callstopd;
}

my $TRUE = JSON::PP::true;
my $FALSE = JSON::PP::false;

my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $globex = $t->tenant('globex', workspace_id => 'ws_globex');
my $lister = $t->tenant('lister', workspace_id => 'ws_lister');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $gkey = $t->key(tenant => 'globex', frontend_id => 'fe2');
my $lkey = $t->key(tenant => 'lister', frontend_id => 'fe3');
my $key_id = key_id($key);

my @ACTIVE = qw(initiated connecting ringing running);
my @TERMINAL = qw(completed ended cancelled failed error declined rejected busy no_answer not_reachable);
my %HEPPU = (
	initiated => 'initiated', connecting => 'connecting', ringing => 'ringing', running => 'active',
	completed => 'completed', ended => 'completed', cancelled => 'cancelled', failed => 'failed',
	error => 'failed', declined => 'busy', rejected => 'busy', busy => 'busy', no_answer => 'no_answer',
	not_reachable => 'failed',
);

# ---- helpers ----------------------------------------------------------------

sub uri ($s) { return $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ger }

sub heppu ($method, $path, $k = $key) {
	return $t->request($method, $path, headers => { defined $k ? ('x-api-key' => $k) : () });
}

# Insert a call; returns its id.
sub insert_call (%f) {
	my @cols = qw(tenant_id agent_id to_number status livekit_room openai_call_id created_at started_at
		ended_at end_reason batch_id batch_entry_id);
	$f{tenant_id} //= $acme;
	$f{to_number} //= '+15550000000';
	$f{status} //= 'running';
	my @use = grep { exists $f{$_} } @cols;
	$f{id} and unshift @use, 'id';
	return $t->psql_value('INSERT INTO voice_call_logs (' . join(', ', @use) . ') VALUES ('
		. join(', ', map { q_($f{$_}) } @use) . ') RETURNING id');
}

# RFC 3339 UTC with milliseconds, as PostgreSQL would format a timestamptz.
sub db_time ($expr) {
	return $t->psql_value(qq{SELECT to_char(($expr) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')});
}

sub call_row ($id) {
	my $r = $t->psql("SELECT status, ended_at IS NOT NULL, coalesce(end_reason, '<null>'),"
		. " extract(epoch FROM ended_at) FROM voice_call_logs WHERE id = '$id'")->[0];
	return { status => $r->[0], ended => $r->[1], end_reason => $r->[2], ended_epoch => $r->[3] };
}

sub history_rows ($call_id) {
	return $t->psql("SELECT tenant_id, resource_type, call_id, coalesce(batch_id::text, ''), force,"
		. " cancelled_count, key_id, key_kind, request_id FROM cancel_history WHERE call_id = '$call_id'"
		. ' ORDER BY id');
}

sub err ($code, $message) { return { error => { message => $message, code => $code } } }

# An error in Heppu's shape whose message SPEC does not fix.
sub is_heppu_error ($r, $code, $name) {
	subtest $name => sub {
		is($r->{status}, $code, "status $code") or diag($r->{body});
		my $j = $r->{json};
		ok(ref $j eq 'HASH' && ref $j->{error} eq 'HASH', 'body {"error": {...}}') or return;
		is_deeply([ sort keys %$j ], ['error'], 'only "error" at the top level');
		is_deeply([ sort keys %{ $j->{error} } ], [ 'code', 'message' ], 'error has message and code');
		is($j->{error}{code}, $code, 'error.code');
		ok(defined $j->{error}{message} && !ref $j->{error}{message} && length $j->{error}{message},
			'error.message is a non-empty string');
	};
}

# ---- DELETE: the four cancellable states ----------------------------------------------

for my $st (@ACTIVE) {
	subtest "DELETE a call in $st" => sub {
		my $room = "room-$st";
		my $id = insert_call(status => $st, agent_id => 'ag1', livekit_room => $room,
			created_at => '2026-02-01T10:00:00.250Z',
			$st eq 'running' ? (started_at => '2026-02-01T10:00:05.000Z') : ());
		my $before = time;
		my $r = heppu(DELETE => "/api/v1/calls/$id");
		my $after = time;
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
		is_deeply($r->{json}, { data => { id => $id, status => 'cancelled' }, message => 'Call cancelled successfully' },
			'body');
		my $row = call_row($id);
		is($row->{status}, 'cancelled', 'DB: cancelled');
		ok($row->{ended}, 'DB: ended_at set');
		ok($row->{ended_epoch} >= $before - 1 && $row->{ended_epoch} <= $after + 1, 'DB: ended_at is now')
			or diag("ended $row->{ended_epoch}, request $before..$after");
		is_deeply(history_rows($id),
			[ [ $acme, 'call', $id, '', 'f', 1, $key_id, 'api_key', $r->{headers}{'x-request-id'} ] ],
			'one history row: tenant, key, request id');
		is_deeply($t->psql("SELECT provider, target FROM termination_outbox WHERE call_id = '$id'"),
			[ [ 'livekit', $room ] ], 'the LiveKit room is queued for deletion (outbox)');

		my $g = heppu(GET => "/api/v1/calls/$id");
		is($g->{status}, 200, 'GET after: 200');
		my $ended = db_time("SELECT ended_at FROM voice_call_logs WHERE id = '$id'");
		is_deeply($g->{json}, { data => {
			id => $id, status => 'cancelled', agentId => 'ag1', toNumber => '+15550000000', batchId => undef,
			createdAt => '2026-02-01T10:00:00.250Z',
			startedAt => $st eq 'running' ? '2026-02-01T10:00:05.000Z' : undef,
			endedAt => $ended, endReason => $row->{end_reason} } },
			'GET after: status cancelled, endedAt set') or diag($g->{body});
		ok(defined $g->{json}{data}{endedAt}, 'endedAt is not null');
	};
}

subtest 'DELETE: the room cannot be deleted: the call is still cancelled, a warning is logged, it is retried' => sub {
	my $id = insert_call(status => 'running', livekit_room => 'room-warn-1');
	my $r = heppu(DELETE => "/api/v1/calls/$id");
	is_deeply([ $r->{status}, $r->{json} ],
		[ 200, { data => { id => $id, status => 'cancelled' }, message => 'Call cancelled successfully' } ], 'status 200 and body');
	is_deeply([ @{ call_row($id) }{qw(status ended)} ], [ 'cancelled', 't' ], 'cancelled, ended_at set');
	ok($t->wait_until(sub { $t->log =~ /\[warn\][^\n]*(?:room-warn-1|\Q$id\E)/ }, timeout => 3),
		'a warning naming the room or the call is logged')
		or diag("log lines about it:\n" . join("\n", grep { /room-warn-1|\Q$id\E|livekit/i } split /\n/, $t->log));
	my $row = $t->psql("SELECT state, attempts >= 1, coalesce(last_error, '') <> '' FROM termination_outbox"
		. " WHERE call_id = '$id' AND provider = 'livekit' AND target = 'room-warn-1'");
	is_deeply($row, [ [ 'pending', 't', 't' ] ], 'the deletion stays queued for a retry, with its error');
};

subtest 'DELETE with the call id in upper case' => sub {
	my $id = insert_call(status => 'ringing');
	my $r = heppu(DELETE => '/api/v1/calls/' . uc $id);
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is($r->{json}{data}{status}, 'cancelled', 'data.status');
	is($r->{json}{message}, 'Call cancelled successfully', 'message');
	is(call_row($id)->{status}, 'cancelled', 'DB: cancelled');
};

subtest 'DELETE a call of a batch: its entry is cancelled, the counters move' => sub {
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($acme, 'batch-h1', 'processing') RETURNING id");
	my $e = $t->psql_value("INSERT INTO voice_call_batch_entries (batch_id, to_number, status) VALUES ('$b', '+1', 'running') RETURNING id");
	$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b', '+2')");
	my $id = insert_call(status => 'running', batch_id => $b, batch_entry_id => $e);
	$t->psql("UPDATE voice_call_batch_entries SET call_log_id = '$id' WHERE id = $e");
	my $r = heppu(DELETE => "/api/v1/calls/$id");
	is_deeply([ $r->{status}, $r->{json} ],
		[ 200, { data => { id => $id, status => 'cancelled' }, message => 'Call cancelled successfully' } ], '200 body');
	is($t->psql_value("SELECT status FROM voice_call_batch_entries WHERE id = $e"), 'cancelled', 'entry cancelled');
	is_deeply($t->psql("SELECT status, total_count, pending_count, running_count, cancelled_count FROM voice_call_batches WHERE id = '$b'"),
		[ [ 'processing', 2, 1, 0, 1 ] ], 'batch counters moved; the batch itself goes on');
	my $g = heppu(GET => "/api/v1/calls/$id");
	is($g->{json}{data}{batchId}, 'batch-h1', 'GET: batchId is the job_id');
};

subtest 'DELETE /api/v1/calls/{a batch id}: not a call, 404, the batch untouched' => sub {
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($acme, 'batch-h2', 'processing') RETURNING id");
	$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$b', '+1')");
	my $snap = fx_snapshot($t);
	for my $id ($b, 'batch-h2') {
		my $r = heppu(DELETE => "/api/v1/calls/$id");
		is_deeply([ $r->{status}, $r->{json} ], [ 404, err(404, 'Call not found') ], "DELETE /api/v1/calls/$id: 404");
		$r = heppu(GET => "/api/v1/calls/$id");
		is_deeply([ $r->{status}, $r->{json} ], [ 404, err(404, 'Call not found') ], "GET /api/v1/calls/$id: 404");
	}
	is_deeply(fx_snapshot($t), $snap, 'nothing changed');
};

# ---- DELETE: terminal states are 400, in Heppu's names ----------------------------------

for my $st (@TERMINAL) {
	my $id = insert_call(status => $st, ended_at => '2026-02-01T11:00:00Z', end_reason => $st);
	my $snap = fx_snapshot($t);
	my $r = heppu(DELETE => "/api/v1/calls/$id");
	is_deeply([ $r->{status}, $r->{json} ], [ 400, err(400, "Cannot cancel call with status: $HEPPU{$st}") ],
		"DELETE a call in $st: 400 \"Cannot cancel call with status: $HEPPU{$st}\"") or diag($r->{body});
	is_deeply(fx_snapshot($t), $snap, "... nothing changed ($st)");
}

# ---- DELETE: not found -------------------------------------------------------------------

{
	my $snap = fx_snapshot($t);
	for my $id ('00000000-0000-4000-8000-000000000001', 'not-a-uuid', 'call_abc123', 'x' x 200) {
		my $r = heppu(DELETE => '/api/v1/calls/' . uri($id));
		is_deeply([ $r->{status}, $r->{json} ], [ 404, err(404, 'Call not found') ],
			'DELETE unknown ' . substr($id, 0, 40) . ': 404') or diag($r->{body});
	}
	is_deeply(fx_snapshot($t), $snap, '... nothing changed');
	insert_call(status => 'running', openai_call_id => 'call_heppu_oai');
	$snap = fx_snapshot($t);
	my $r = heppu(DELETE => '/api/v1/calls/call_heppu_oai');
	is_deeply([ $r->{status}, $r->{json} ], [ 404, err(404, 'Call not found') ],
		'DELETE by an OpenAI call id: not a call id here, 404');
	is_deeply(fx_snapshot($t), $snap, '... nothing changed');
}

# ---- another tenant's call: 403, nothing changes -------------------------------------------

{
	my $theirs = insert_call(tenant_id => $globex, status => 'running', livekit_room => 'globex-room',
		agent_id => 'ag1');
	my $theirs_done = insert_call(tenant_id => $globex, status => 'completed', agent_id => 'ag1');
	my $snap = fx_snapshot($t);
	my $denied = err(403, 'Access denied - call belongs to different organization');
	for my $id ($theirs, $theirs_done) {
		my $r = heppu(DELETE => "/api/v1/calls/$id");
		is_deeply([ $r->{status}, $r->{json} ], [ 403, $denied ], "DELETE another tenant's call: 403")
			or diag($r->{body});
		$r = heppu(GET => "/api/v1/calls/$id");
		is_deeply([ $r->{status}, $r->{json} ], [ 403, $denied ], "GET another tenant's call: 403")
			or diag($r->{body});
	}
	is_deeply(fx_snapshot($t), $snap, "another tenant's calls: nothing changed");
	is(call_row($theirs)->{status}, 'running', '... still running');

	my $r = heppu(DELETE => "/api/v1/calls/$theirs", $gkey);
	is($r->{status}, 200, 'its own tenant can cancel it');
}

# ---- 401 -----------------------------------------------------------------------------------

{
	my $id = insert_call(status => 'running');
	my $snap = fx_snapshot($t, except => ['api_keys']);   # the test revokes a key
	my $unauth = err(401, 'Unauthorized');
	my @alnum = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);
	my $unknown = 'csk_' . join '', map { $alnum[rand @alnum] } 1 .. 40;
	for my $req ([ DELETE => "/api/v1/calls/$id" ], [ GET => "/api/v1/calls/$id" ], [ GET => '/api/v1/calls' ]) {
		my $r = heppu(@$req, undef);
		is_deeply([ $r->{status}, $r->{json} ], [ 401, $unauth ], "@$req without x-api-key: 401");
		ok(!from_callstopd($r, 0.3), '... answered by nginx');
		$r = heppu(@$req, 'csk_short');
		is_deeply([ $r->{status}, $r->{json} ], [ 401, $unauth ], "@$req with a malformed key: 401");
		$r = heppu(@$req, $unknown);
		is_deeply([ $r->{status}, $r->{json} ], [ 401, $unauth ], "@$req with an unknown key: 401");
		ok(from_callstopd($r), '... answered by callstopd');
	}
	my $doomed = $t->key(tenant => 'acme', frontend_id => 'fe9');
	is(heppu(GET => "/api/v1/calls/$id", $doomed)->{status}, 200, 'a key works');
	my ($rc, $out, $err) = $t->ctl('key', 'revoke', key_id($doomed));
	is($rc, 0, 'callstopctl key revoke') or diag($err);
	sleep 1.2;    # a revoked key stops working within 1 s
	for my $req ([ DELETE => "/api/v1/calls/$id" ], [ GET => "/api/v1/calls/$id" ], [ GET => '/api/v1/calls' ]) {
		my $r = heppu(@$req, $doomed);
		is_deeply([ $r->{status}, $r->{json} ], [ 401, $unauth ], "@$req with a revoked key: 401");
	}
	is_deeply(fx_snapshot($t, except => ['api_keys']), $snap, '401s: nothing changed');
}

# ---- GET one call: Heppu's names for every state ---------------------------------------------

{
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id) VALUES ($acme, 'batch-get-1') RETURNING id");
	my $i = 0;
	for my $st (@ACTIVE, @TERMINAL) {
		$i++;
		my $terminal = grep { $_ eq $st } @TERMINAL;
		my %f = (
			status     => $st,
			agent_id   => "agent-$i",
			to_number  => "+4930000$i",
			created_at => sprintf('2026-01-%02dT08:%02d:01.%03dZ', $i, $i, $i * 7),
			$st ne 'initiated' ? (started_at => sprintf('2026-01-%02dT08:%02d:09.5Z', $i, $i)) : (),
			$terminal ? (ended_at => sprintf('2026-01-%02dT09:00:00Z', $i), end_reason => "reason-$st") : (),
			$i % 2 ? (batch_id => $b) : (),
		);
		my $id = insert_call(%f);
		my $r = heppu(GET => "/api/v1/calls/$id");
		is_deeply([ $r->{status}, $r->{json} ], [ 200, { data => {
			id        => $id,
			status    => $HEPPU{$st},
			agentId   => "agent-$i",
			toNumber  => "+4930000$i",
			batchId   => $i % 2 ? 'batch-get-1' : undef,
			createdAt => $f{created_at},
			startedAt => $st ne 'initiated' ? sprintf('2026-01-%02dT08:%02d:09.500Z', $i, $i) : undef,
			endedAt   => $terminal ? sprintf('2026-01-%02dT09:00:00.000Z', $i) : undef,
			endReason => $terminal ? "reason-$st" : undef,
		} } ], "GET a call in $st: status \"$HEPPU{$st}\", all fields") or diag($r->{body});
	}
	my $id = insert_call(status => 'ringing', created_at => '2026-01-20T00:00:00+05:00');
	my $r = heppu(GET => "/api/v1/calls/$id");
	is_deeply($r->{json}, { data => { id => $id, status => 'ringing', agentId => undef, toNumber => '+15550000000',
		batchId => undef, createdAt => '2026-01-19T19:00:00.000Z', startedAt => undef, endedAt => undef,
		endReason => undef } }, 'GET: nulls stay null; times in UTC') or diag($r->{body});

	for my $bad ('00000000-0000-4000-8000-000000000002', 'nope') {
		$r = heppu(GET => "/api/v1/calls/$bad");
		is_deeply([ $r->{status}, $r->{json} ], [ 404, err(404, 'Call not found') ], "GET unknown $bad: 404");
	}
}

# ---- the list ------------------------------------------------------------------------------

# 130 calls of tenant "lister", every state, three agents and none, distinct
# times every 7h13m from 2026-03-01, a third of them in a batch.  Globex has
# calls with the same agents at the same times: they never show.
my @AGENTS = ('ag_a', 'ag_b', 'ag_c', undef);
my @LIST;
{
	my $lb = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id) VALUES ($lister, 'batch-list-1') RETURNING id");
	my $t0 = 1772323200;    # 2026-03-01T00:00:00Z
	my @statuses = (@ACTIVE, @TERMINAL);
	my (@values, @theirs);
	for my $i (0 .. 129) {
		my $at = $t0 + $i * (7 * 3600 + 13 * 60);
		my $ms = ($i * 37) % 1000;
		my $iso = sub ($s, $m) { strftime('%Y-%m-%dT%H:%M:%S', gmtime $s) . sprintf('.%03dZ', $m) };
		my $st = $statuses[ ($i * 5) % @statuses ];
		my $terminal = grep { $_ eq $st } @TERMINAL;
		my $c = {
			id        => sprintf('%08x-0000-4000-8000-%012x', 0x10000 + $i, $i),
			status    => $HEPPU{$st},
			agentId   => $AGENTS[ $i % 4 ],
			toNumber  => sprintf('+1555%07d', $i),
			batchId   => $i % 3 == 0 ? 'batch-list-1' : undef,
			createdAt => $iso->($at, $ms),
			startedAt => $st =~ /^(initiated|connecting|ringing)$/ ? undef : $iso->($at + 4, $ms),
			endedAt   => $terminal ? $iso->($at + 300, 0) : undef,
			endReason => $terminal ? "end-$st" : undef,
			_status   => $st,
			_epoch    => $at + $ms / 1000,
		};
		push @LIST, $c;
		push @values, '(' . join(', ', q_($c->{id}), $lister, $i % 3 == 0 ? q_($lb) : 'NULL', q_($c->{agentId}),
			q_($c->{toNumber}), q_($st), q_($c->{createdAt}), q_($c->{startedAt}), q_($c->{endedAt}),
			q_($c->{endReason})) . ')';
		push @theirs, '(' . join(', ', $globex, q_($c->{agentId}), q_('+1'), q_($st), q_($c->{createdAt})) . ')';
	}
	$t->psql('INSERT INTO voice_call_logs (id, tenant_id, batch_id, agent_id, to_number, status, created_at,'
		. ' started_at, ended_at, end_reason) VALUES ' . join(",\n", @values));
	$t->psql('INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, created_at) VALUES '
		. join(",\n", @theirs));
}

sub public ($c) { return { map { $_ => $c->{$_} } grep { !/^_/ } keys %$c } }

# What the list must answer: filter, newest first, one page.
sub expect_list (%q) {
	my @m = grep {
		(!defined $q{agentId} || (defined $_->{agentId} && $_->{agentId} eq $q{agentId}))
			&& (!defined $q{status} || $_->{status} eq $q{status})
			&& (!defined $q{_from} || $_->{_epoch} >= $q{_from})
			&& (!defined $q{_to} || $_->{_epoch} < $q{_to})
	} @LIST;
	@m = sort { $b->{_epoch} <=> $a->{_epoch} || $b->{id} cmp $a->{id} } @m;
	my $page = $q{page} // 1;
	my $limit = $q{limit} // 20;
	$limit = 100 if $limit > 100;
	my @slice = grep { defined } @m[ ($page - 1) * $limit .. $page * $limit - 1 ];
	return { data => { calls => [ map { public($_) } @slice ],
		pagination => { page => $page, limit => $limit, hasMore => @m > $page * $limit ? $TRUE : $FALSE } } };
}

sub list_ok ($query, $want, $name) {
	my $r = heppu(GET => '/api/v1/calls' . (length $query ? "?$query" : ''), $lkey);
	is($r->{status}, 200, "$name: 200") or diag($r->{body});
	is_deeply($r->{json}, $want, "$name: body")
		or diag('got ids: ' . join(' ', map { $_->{id} } @{ $r->{json}{data}{calls} // [] })
			. "\nwant:    " . join(' ', map { $_->{id} } @{ $want->{data}{calls} }));
	return $r;
}

sub epoch ($iso) {    # 2026-03-02T10:00:00Z / 2026-03-02 -> epoch (UTC)
	return $t->psql_value("SELECT extract(epoch FROM ${\ q_($iso)}::timestamptz)");
}

list_ok('', expect_list(), 'no parameters: 20 newest, hasMore');
is(scalar @{ expect_list()->{data}{calls} }, 20, '(the default page has 20)');
list_ok('page=2', expect_list(page => 2), 'page=2');
list_ok('page=7', expect_list(page => 7), 'page=7: the last 10, hasMore false');
list_ok('page=8', expect_list(page => 8), 'page=8: past the end, no calls');
list_ok('limit=50&page=3', expect_list(limit => 50, page => 3), 'limit=50&page=3');
list_ok('limit=100', expect_list(limit => 100), 'limit=100');
list_ok('limit=101', expect_list(limit => 101), 'limit=101 is capped at 100');
list_ok('limit=1000&page=2', expect_list(limit => 1000, page => 2), 'limit=1000&page=2: pages of 100');
list_ok('limit=1', expect_list(limit => 1), 'limit=1');
list_ok('agentId=ag_b', expect_list(agentId => 'ag_b'), 'agentId');
list_ok('agentId=ag_b&limit=100', expect_list(agentId => 'ag_b', limit => 100), 'agentId, all of them');
list_ok('agentId=nobody', expect_list(agentId => 'nobody'), 'unknown agentId: empty');

for my $hs (qw(initiated connecting ringing active completed cancelled failed busy no_answer)) {
	list_ok("status=$hs&limit=100", expect_list(status => $hs, limit => 100), "status=$hs");
}
{
	my %ours;
	push @{ $ours{ $_->{status} } }, $_->{_status} for @LIST;
	my %set = map { $_ => { map { $_ => 1 } @{ $ours{$_} } } } keys %ours;
	is_deeply([ sort keys %{ $set{completed} } ], [qw(completed ended)], '(the data has completed and ended)');
	is_deeply([ sort keys %{ $set{failed} } ], [qw(error failed not_reachable)], '(... failed, error, not_reachable)');
	is_deeply([ sort keys %{ $set{busy} } ], [qw(busy declined rejected)], '(... busy, declined, rejected)');
}
list_ok('agentId=ag_a&status=completed', expect_list(agentId => 'ag_a', status => 'completed'), 'agentId + status');
list_ok('status=failed&agentId=ag_c&limit=3&page=2',
	expect_list(agentId => 'ag_c', status => 'failed', limit => 3, page => 2), 'agentId + status, paged');

# Dates: startDate <= createdAt < endDate.  The 10th call's time, exactly, as
# both bounds: included as start, excluded as end.
{
	my $c = $LIST[10];
	my $at = $c->{createdAt};
	list_ok('startDate=' . uri($at) . '&limit=100', expect_list(_from => $c->{_epoch}, limit => 100),
		'startDate = a createdAt: that call is in');
	list_ok('endDate=' . uri($at) . '&limit=100', expect_list(_to => $c->{_epoch}, limit => 100),
		'endDate = a createdAt: that call is out');
	my $r = list_ok('startDate=' . uri($at) . '&endDate=' . uri($LIST[14]{createdAt}),
		expect_list(_from => $c->{_epoch}, _to => $LIST[14]{_epoch}), 'a range of four calls');
	is(scalar @{ $r->{json}{data}{calls} }, 4, '(four)');

	list_ok('startDate=2026-03-05&endDate=2026-03-08',
		expect_list(_from => epoch('2026-03-05T00:00:00Z'), _to => epoch('2026-03-08T00:00:00Z')),
		'bare dates mean 00:00 UTC');
	list_ok('startDate=2026-03-05T02:00:00%2B02:00&endDate=2026-03-07T23:30:00-00:30',
		expect_list(_from => epoch('2026-03-05T00:00:00Z'), _to => epoch('2026-03-08T00:00:00Z')),
		'RFC 3339 with offsets');
	list_ok('startDate=2026-03-05T00:00:00.000Z&endDate=2026-03-08T00:00:00.000000Z',
		expect_list(_from => epoch('2026-03-05T00:00:00Z'), _to => epoch('2026-03-08T00:00:00Z')),
		'RFC 3339 with fractions');
	list_ok('agentId=ag_a&status=completed&startDate=2026-03-03&endDate=2026-04-01&limit=100',
		expect_list(agentId => 'ag_a', status => 'completed', _from => epoch('2026-03-03'),
			_to => epoch('2026-04-01'), limit => 100), 'every filter at once');
	list_ok('startDate=2030-01-01', expect_list(_from => epoch('2030-01-01')), 'a range with nothing: empty');
}

# Calls of the same instant: pages neither repeat nor skip one.
{
	my @same = map { insert_call(tenant_id => $lister, agent_id => 'ag_same', created_at => '2026-06-01T00:00:00Z') } 1 .. 3;
	my @seen = map { map { $_->{id} } @{ heppu(GET => "/api/v1/calls?agentId=ag_same&limit=1&page=$_", $lkey)->{json}{data}{calls} } } 1 .. 3;
	is_deeply([ sort @seen ], [ sort @same ], 'equal createdAt: three pages of one, each call once');
	$t->psql("DELETE FROM voice_call_logs WHERE agent_id = 'ag_same'");
}

# Bad parameters: 400 in Heppu's shape.
for my $q ('status=running', 'status=ended', 'status=error', 'status=bogus', 'status=ACTIVE', 'startDate=yesterday',
	'startDate=2026-13-01', 'startDate=2026-02-30', 'endDate=2026-04-31',
	'startDate=0000-01-01', 'startDate=2026-03-01T10:00:00%2B99:00', 'endDate=2026-03-01T25:00:00Z', 'endDate=2026-03-01T10:00Z',
	'startDate=2026-03-01T10:00:00', 'endDate=1772323200', 'page=0', 'page=-1', 'page=x', 'limit=0', 'limit=abc')
{
	is_heppu_error(heppu(GET => "/api/v1/calls?$q", $lkey), 400, "list ?$q: 400 in Heppu's shape");
}

done_testing();
