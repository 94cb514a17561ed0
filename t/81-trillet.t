#!/usr/bin/perl
# SPEC 4.2, the Trillet-style batch API, end to end through nginx:
#   DELETE /v1/api/batch-calls/{batchId}  (and /v1/batch-calls/{batchId})
#   GET    /v1/api/batch-calls/{batchId}  (and /v1/batch-calls/{batchId})
# with x-api-key + x-workspace-id.  A graceful cancel: queued entries are
# cancelled, running calls finish.  Bodies compared whole; "nothing changed"
# is a snapshot of the tables before and after.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup q_ key_id from_callstopd);
use Fixtures qw(fx_snapshot);
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);

my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $globex = $t->tenant('globex', workspace_id => 'ws_globex');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $gkey = $t->key(tenant => 'globex', frontend_id => 'fe2');
my $key_id = key_id($key);

my @PATHS = ('/v1/api/batch-calls', '/v1/batch-calls');

# ---- helpers ----------------------------------------------------------------

sub trillet ($method, $path, %o) {
	my $k = exists $o{key} ? $o{key} : $key;
	my $ws = exists $o{ws} ? $o{ws} : 'ws_acme';
	return $t->request($method, $path,
		headers => { defined $k ? ('x-api-key' => $k) : (), defined $ws ? ('x-workspace-id' => $ws) : () });
}

# A batch with entries in the given states (running entries get a running
# call of the batch; completed/failed/cancelled ones a call in a matching
# terminal state).  Returns (uuid, { entry status => [entry ids] }, [running call ids]).
sub make_batch ($tenant, $job_id, $status, %n) {
	my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES"
		. " ($tenant, ${\ q_($job_id)}, ${\ q_($status)}) RETURNING id");
	my (%entries, @running);
	my %call_status = (running => 'running', completed => 'completed', failed => 'no_answer', cancelled => 'cancelled');
	for my $st (qw(pending claimed running completed failed cancelled)) {
		for my $i (1 .. ($n{$st} // 0)) {
			my $e = $t->psql_value("INSERT INTO voice_call_batch_entries (batch_id, to_number, status"
				. ($st eq 'claimed' ? ', claimed_by, claimed_at' : '') . ") VALUES ('$b', '+1555$i', '$st'"
				. ($st eq 'claimed' ? ", 'dialer-1', now()" : '') . ') RETURNING id');
			push @{ $entries{$st} }, $e;
			next unless $call_status{$st};
			my $c = $t->psql_value('INSERT INTO voice_call_logs (tenant_id, batch_id, batch_entry_id, agent_id,'
				. " to_number, status, livekit_room) VALUES ($tenant, '$b', $e, 'agent-1', '+1555$i',"
				. " '$call_status{$st}', 'room-$job_id-$e') RETURNING id");
			$t->psql("UPDATE voice_call_batch_entries SET call_log_id = '$c' WHERE id = $e");
			push @running, $c if $st eq 'running';
		}
	}
	return ($b, \%entries, \@running);
}

sub answer ($id, $status, $message, $completed, $failed, $cancelled, $total) {
	return { batchId => $id, status => $status, message => $message, details => {
		completedCalls => $completed, failedCalls => $failed, cancelledCalls => $cancelled, totalCalls => $total } };
}

sub not_found ($id) { return { error => 'Batch not found', message => 'No batch with the specified ID', id => $id } }

# 401/403: {"error": "Unauthorized"|"Forbidden", "message": "..."}; the
# message is not fixed by SPEC.
sub is_trillet_error ($r, $code, $error, $name) {
	subtest $name => sub {
		is($r->{status}, $code, "status $code") or diag($r->{body});
		my $j = $r->{json};
		ok(ref $j eq 'HASH', 'JSON object') or return;
		is_deeply([ sort keys %$j ], [ 'error', 'message' ], 'keys: error, message');
		is($j->{error}, $error, "error: $error");
		ok(defined $j->{message} && !ref $j->{message} && length $j->{message}, 'message: a non-empty string');
	};
}

# ---- graceful cancel by job_id ---------------------------------------------------------

subtest 'DELETE /v1/api/batch-calls/{job_id}: graceful cancel' => sub {
	my ($b, $e, $running) = make_batch($acme, 'batch-t1', 'processing',
		pending => 3, claimed => 1, running => 2, completed => 2, failed => 1, cancelled => 1);
	my $before = time;
	my $r = trillet(DELETE => '/v1/api/batch-calls/batch-t1');
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
	is_deeply($r->{json}, answer('batch-t1', 'cancelled', 'Batch cancelled successfully', 2, 1, 5, 10), 'body')
		or diag($r->{body});

	is_deeply($t->psql("SELECT status, cancelled_at IS NOT NULL, extract(epoch FROM cancelled_at) >= $before - 1,"
		. " total_count, pending_count, claimed_count, running_count, completed_count, failed_count, cancelled_count"
		. " FROM voice_call_batches WHERE id = '$b'"),
		[ [ 'cancelled', 't', 't', 10, 0, 0, 2, 2, 1, 5 ] ], 'DB: batch cancelled, counters');
	is_deeply($t->psql("SELECT status, count(*) FROM voice_call_batch_entries WHERE batch_id = '$b' GROUP BY 1 ORDER BY 1"),
		[ [ 'cancelled', 5 ], [ 'completed', 2 ], [ 'failed', 1 ], [ 'running', 2 ] ],
		'DB: pending and claimed entries cancelled, running ones still running');
	is_deeply($t->psql("SELECT DISTINCT status FROM voice_call_logs WHERE id IN ('" . join("','", @$running) . "')"),
		[ ['running'] ], 'DB: the running calls keep running');
	is($t->psql_value("SELECT count(*) FROM termination_outbox WHERE call_id IN ('" . join("','", @$running) . "')"),
		0, 'nothing queued for termination');
	is_deeply($t->psql("SELECT tenant_id, resource_type, force, cancelled_count, key_id, key_kind, request_id"
		. " FROM cancel_history WHERE batch_id = '$b'"),
		[ [ $acme, 'batch', 'f', 4, $key_id, 'api_key', $r->{headers}{'x-request-id'} ] ],
		'one history row: graceful, 4 cancelled, the key, the request id');

	my $snap = fx_snapshot($t);
	for my $p (@PATHS) {
		my $again = trillet(DELETE => "$p/batch-t1");
		is_deeply([ $again->{status}, $again->{json} ],
			[ 200, answer('batch-t1', 'cancelled', 'Batch already in terminal state: cancelled', 2, 1, 5, 10) ],
			"DELETE $p again: 200, already in terminal state") or diag($again->{body});
		my $g = trillet(GET => "$p/batch-t1");
		is_deeply([ $g->{status}, $g->{json} ], [ 200, answer('batch-t1', 'cancelled', 'Batch status', 2, 1, 5, 10) ],
			"GET $p: Batch status") or diag($g->{body});
	}
	is_deeply(fx_snapshot($t), $snap, 'a second DELETE and the GETs change nothing');

	# The running calls finish naturally; the batch stays cancelled.
	for my $c (@$running) {
		is($t->psql_value("SELECT callstop_report_call('$c', 'completed')"), 'completed', 'a running call completes');
	}
	my $g = trillet(GET => '/v1/api/batch-calls/batch-t1');
	is_deeply($g->{json}, answer('batch-t1', 'cancelled', 'Batch status', 4, 1, 5, 10),
		'GET after the running calls completed: completedCalls 4') or diag($g->{body});
};

subtest 'DELETE /v1/batch-calls/{uuid}: the older path, the batch UUID' => sub {
	my ($b) = make_batch($acme, 'batch-t2', 'pending', pending => 5);
	my $r = trillet(DELETE => "/v1/batch-calls/$b");
	is_deeply([ $r->{status}, $r->{json} ], [ 200, answer($b, 'cancelled', 'Batch cancelled successfully', 0, 0, 5, 5) ],
		'200, batchId as given') or diag($r->{body});
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'cancelled', 'DB: cancelled');
	is($t->psql_value("SELECT count(*) FROM voice_call_batch_entries WHERE batch_id = '$b' AND status = 'cancelled'"), 5,
		'DB: 5 entries cancelled');
	my $g = trillet(GET => "/v1/api/batch-calls/$b");
	is_deeply($g->{json}, answer($b, 'cancelled', 'Batch status', 0, 0, 5, 5), 'GET by UUID');
};

subtest 'DELETE /v1/api/batch-calls/{uuid} and /v1/batch-calls/{job_id}' => sub {
	my ($b1) = make_batch($acme, 'batch-t3', 'processing', pending => 1, running => 1, completed => 1);
	my $r = trillet(DELETE => "/v1/api/batch-calls/$b1");
	is_deeply([ $r->{status}, $r->{json} ], [ 200, answer($b1, 'cancelled', 'Batch cancelled successfully', 1, 0, 1, 3) ],
		'by UUID on /v1/api/batch-calls') or diag($r->{body});
	my ($b2) = make_batch($acme, 'batch-t4', 'processing', claimed => 2, failed => 3);
	$r = trillet(DELETE => '/v1/batch-calls/batch-t4');
	is_deeply([ $r->{status}, $r->{json} ], [ 200, answer('batch-t4', 'cancelled', 'Batch cancelled successfully', 0, 3, 2, 5) ],
		'by job_id on /v1/batch-calls') or diag($r->{body});
	my ($b3) = make_batch($acme, 'batch-t5', 'processing');
	$r = trillet(DELETE => '/v1/batch-calls/batch-t5');
	is_deeply([ $r->{status}, $r->{json} ], [ 200, answer('batch-t5', 'cancelled', 'Batch cancelled successfully', 0, 0, 0, 0) ],
		'an empty batch') or diag($r->{body});
};

# ---- terminal batches: 200, "already in terminal state", nothing changes ----------------

for my $case ([ 'completed', 'completed' ], [ 'failed', 'failed' ], [ 'stopped', 'cancelled' ], [ 'cancelled', 'cancelled' ]) {
	my ($st, $shown) = @$case;
	my $job = "batch-term-$st";
	my ($b) = make_batch($acme, $job, $st, completed => 3, failed => 2, cancelled => 1,
		$st =~ /cancelled|stopped/ ? (running => 1) : ());
	my $n_running = $st =~ /cancelled|stopped/ ? 1 : 0;
	my $snap = fx_snapshot($t);
	for my $p (@PATHS) {
		for my $id ($job, $b) {
			my $r = trillet(DELETE => "$p/$id");
			is_deeply([ $r->{status}, $r->{json} ],
				[ 200, answer($id, $shown, "Batch already in terminal state: $shown", 3, 2, 1, 6 + $n_running) ],
				"DELETE $p/<" . ($id eq $b ? 'uuid' : 'job_id') . "> of a $st batch: 200 \"$shown\"")
				or diag($r->{body});
			$r = trillet(GET => "$p/$id");
			is_deeply([ $r->{status}, $r->{json} ], [ 200, answer($id, $shown, 'Batch status', 3, 2, 1, 6 + $n_running) ],
				"GET $p of a $st batch: \"$shown\"") or diag($r->{body});
		}
	}
	is_deeply(fx_snapshot($t), $snap, "a $st batch: nothing changed (its running call too)");
}

# ---- GET an active batch: nothing changes ------------------------------------------------

{
	my ($b) = make_batch($acme, 'batch-live', 'processing', pending => 4, claimed => 1, running => 2, completed => 1,
		failed => 1);
	my $snap = fx_snapshot($t);
	for my $p (@PATHS) {
		for my $id ('batch-live', $b) {
			my $r = trillet(GET => "$p/$id");
			is_deeply([ $r->{status}, $r->{json} ], [ 200, answer($id, 'processing', 'Batch status', 1, 1, 0, 9) ],
				"GET $p of a processing batch") or diag($r->{body});
		}
	}
	my ($pb) = make_batch($acme, 'batch-pend', 'pending', pending => 2);
	my $r = trillet(GET => '/v1/api/batch-calls/batch-pend');
	is_deeply($r->{json}, answer('batch-pend', 'pending', 'Batch status', 0, 0, 0, 2), 'GET of a pending batch');
	$t->psql("DELETE FROM voice_call_batch_entries WHERE batch_id = '$pb'; DELETE FROM voice_call_batches WHERE id = '$pb'");
	is_deeply(fx_snapshot($t), $snap, 'GET: nothing changed');
}

# ---- 404, and another tenant's batches ------------------------------------------------------

{
	my ($theirs) = make_batch($globex, 'batch-globex', 'processing', pending => 3, running => 1);
	# The same job_id in both tenants: each key reaches its own tenant's.
	my ($their_shared) = make_batch($globex, 'batch-shared', 'processing', pending => 2);
	my ($our_shared) = make_batch($acme, 'batch-shared', 'processing', pending => 1);
	my $snap = fx_snapshot($t);
	for my $p (@PATHS) {
		for my $id ('batch-globex', $theirs, 'batch-nope', '00000000-0000-4000-8000-000000000001', 'no-prefix',
			uc $theirs)
		{
			for my $m (qw(DELETE GET)) {
				my $r = trillet($m => "$p/$id");
				is_deeply([ $r->{status}, $r->{json} ], [ 404, not_found($id) ], "$m $p/$id: 404") or diag($r->{body});
			}
		}
	}
	is_deeply(fx_snapshot($t), $snap, "404s, another tenant's batch by job_id and UUID: nothing changed");
	my $call = $t->psql_value("INSERT INTO voice_call_logs (tenant_id, to_number, status) VALUES ($acme, '+1', 'running') RETURNING id");
	$snap = fx_snapshot($t);
	for my $m (qw(DELETE GET)) {
		my $r = trillet($m => "/v1/api/batch-calls/$call");
		is_deeply([ $r->{status}, $r->{json} ], [ 404, not_found($call) ], "$m /v1/api/batch-calls/{a call id}: 404");
	}
	is_deeply(fx_snapshot($t), $snap, '... the call untouched');

	my $r = trillet(DELETE => '/v1/api/batch-calls/batch-shared');
	is_deeply([ $r->{status}, $r->{json} ],
		[ 200, answer('batch-shared', 'cancelled', 'Batch cancelled successfully', 0, 0, 1, 1) ],
		'a job_id both tenants use: the caller\'s batch is cancelled');
	is_deeply($t->psql("SELECT tenant_id, status, pending_count FROM voice_call_batches WHERE job_id = 'batch-shared' ORDER BY tenant_id"),
		[ [ $acme, 'cancelled', 0 ], [ $globex, 'processing', 2 ] ], '... and only the caller\'s');
	$r = trillet(GET => '/v1/api/batch-calls/batch-shared', key => $gkey, ws => 'ws_globex');
	is_deeply($r->{json}, answer('batch-shared', 'processing', 'Batch status', 0, 0, 0, 2), 'the other tenant sees its own');
}

# ---- 401 and 403 -------------------------------------------------------------------------

{
	my ($b) = make_batch($acme, 'batch-auth', 'processing', pending => 2, running => 1);
	my $snap = fx_snapshot($t, except => ['api_keys']);   # the test revokes a key
	my @alnum = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);
	my $unknown = 'csk_' . join '', map { $alnum[rand @alnum] } 1 .. 40;
	for my $p (@PATHS) {
		for my $m (qw(DELETE GET)) {
			my $path = "$p/batch-auth";
			my $r = trillet($m => $path, key => undef, ws => undef);
			is_trillet_error($r, 401, 'Unauthorized', "$m $path without headers: 401");
			ok(!from_callstopd($r, 0.3), '... from nginx');
			is_trillet_error(trillet($m => $path, ws => undef), 401, 'Unauthorized', "$m $path without x-workspace-id: 401");
			is_trillet_error(trillet($m => $path, key => undef), 401, 'Unauthorized', "$m $path without x-api-key: 401");
			is_trillet_error(trillet($m => $path, key => 'csk_bad'), 401, 'Unauthorized', "$m $path, a malformed key: 401");
			$r = trillet($m => $path, key => $unknown);
			is_trillet_error($r, 401, 'Unauthorized', "$m $path, an unknown key: 401");
			ok(from_callstopd($r), '... from callstopd');

			$r = trillet($m => $path, ws => 'ws_globex');
			is_trillet_error($r, 403, 'Forbidden', "$m $path, another tenant's workspace id: 403");
			is_trillet_error(trillet($m => $path, ws => 'ws_nowhere'), 403, 'Forbidden',
				"$m $path, an unknown workspace id: 403");
			is_trillet_error(trillet($m => "$p/batch-globex", ws => 'ws_globex'), 403, 'Forbidden',
				"$m $p/batch-globex with our key and their workspace id: 403");
		}
	}
	my $doomed = $t->key(tenant => 'acme', frontend_id => 'fe9');
	is(trillet(GET => '/v1/api/batch-calls/batch-auth', key => $doomed)->{status}, 200, 'a key works');
	my ($rc, undef, $err) = $t->ctl('key', 'revoke', key_id($doomed));
	is($rc, 0, 'callstopctl key revoke') or diag($err);
	sleep 1.2;
	for my $m (qw(DELETE GET)) {
		is_trillet_error(trillet($m => '/v1/api/batch-calls/batch-auth', key => $doomed), 401, 'Unauthorized',
			"$m with a revoked key: 401");
	}
	is_deeply(fx_snapshot($t, except => ['api_keys']), $snap, '401 and 403: nothing changed');
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'processing', '... still processing');
}

done_testing();
