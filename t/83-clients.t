#!/usr/bin/perl
# Clients of the compatibility aliases (SPEC 4), written the way those APIs'
# own documentation writes them, against the real nginx (TLS verified):
#   t/clients/clients.py   Python 3 + requests (Debian: python3-requests)
#   t/clients/clients.mjs  Node (18+) and its built-in fetch
# Each runs the same five scenarios and asserts what it gets (exit 1 on a
# mismatch):
#   status-cancel  check a call's status, cancel it only if active
#   cancel-retry   cancel with a short timeout, retried on timeout (once
#                  succeeding at once; once with an impossible 1 ms first
#                  timeout while the call's row is locked, so the first attempt
#                  surely times out)
#   stop-agent     list one agent's calls (paged), DELETE each active one
#   batch          Trillet-style: cancel a batch, read its details
#   admin          admin-cancel by OpenAI call id
# This file prepares the data, runs the clients and checks the database.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Clients;
use Api qw(q_);
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = CallstopTest->new(workers => 2);
my $JSON = JSON::PP->new->canonical;

my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $globex = $t->tenant('globex', workspace_id => 'ws_globex');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $admin = $t->admin_token('--name', 'clients');
my $key_id = $t->psql_value("SELECT id FROM api_keys WHERE key_hash = sha256(convert_to('$key', 'UTF8'))");
my $admin_id = $t->psql_value("SELECT id FROM admin_tokens WHERE token_hash = sha256(convert_to('$admin', 'UTF8'))");
ok(-s $t->tmpdir . '/nginx/cert.pem', 'the certificate to verify nginx against');

# ---- the clients ----------------------------------------------------------------

my $cl = Clients->new($t,
	CALLSTOP_API_KEY      => $key,
	CALLSTOP_WORKSPACE_ID => 'ws_acme',
	CALLSTOP_ADMIN_TOKEN  => $admin,
);

# ---- data helpers ------------------------------------------------------------------

sub insert_call (%f) {
	$f{tenant_id} //= $acme;
	$f{to_number} //= '+15550000000';
	my @use = sort keys %f;
	return $t->psql_value('INSERT INTO voice_call_logs (' . join(', ', @use) . ') VALUES ('
		. join(', ', map { q_($f{$_}) } @use) . ') RETURNING id');
}

sub in_list (@ids) { return "('" . join("', '", @ids) . "')" }

sub history_count ($id) { return $t->psql_value("SELECT count(*) FROM cancel_history WHERE call_id = '$id'") }

# ---- the scenarios, per client ---------------------------------------------------------

my $minute = 0;
sub next_time () { $minute++; return sprintf('2026-04-01T%02d:%02d:00.000Z', int($minute / 60), $minute % 60) }

for my $client ($cl->clients) {
	my $n = $client->{name};
	SKIP: {
		skip "$n: $client->{missing}", 6 if $client->{missing};

		subtest "$n: a failed assertion exits non-zero, and changes nothing" => sub {
			my $snap = $t->psql('SELECT v::text FROM voice_call_logs v ORDER BY id');
			my ($rc, $out, $err) = $cl->run_cmd([ @{ $client->{cmd} }, 'admin' ], $cl->env, OPENAI_CALL_ID => 'call_nobody');
			is($rc, 1, 'admin-cancel of an unknown call: the client exits 1');
			like($err, qr/admin: FAILED/, '... saying what failed') or diag($err);
			($rc, undef, $err) = $cl->run_cmd([ @{ $client->{cmd} }, 'batch' ], $cl->env, BATCH_ID => 'batch-none',
				EXPECT_DETAILS => '{}');
			is($rc, 1, 'cancel of an unknown batch: exit 1') or diag($err);
			($rc) = $cl->run_cmd([ @{ $client->{cmd} }, 'no-such-scenario' ], $cl->env);
			is($rc, 2, 'an unknown scenario: exit 2');
			is_deeply($t->psql('SELECT v::text FROM voice_call_logs v ORDER BY id'), $snap, 'nothing changed');
		};

		subtest "$n: check a call's status, cancel it only if active" => sub {
			my $at = next_time();
			my $id = insert_call(status => 'ringing', agent_id => "status-$n", to_number => '+4915112345678',
				created_at => $at);
			my $want = { id => $id, status => 'ringing', agentId => "status-$n", toNumber => '+4915112345678',
				batchId => undef, createdAt => $at, startedAt => undef, endedAt => undef, endReason => undef };
			my $s = $cl->client_ok($client, 'status-cancel', CALL_ID => $id, EXPECT_CALL => $JSON->encode($want));
			is($s->{action}, 'cancelled', 'an active call: cancelled');
			is_deeply($t->psql("SELECT status, ended_at IS NOT NULL FROM voice_call_logs WHERE id = '$id'"),
				[ [ 'cancelled', 't' ] ], 'DB: cancelled, ended_at set');
			is(history_count($id), 1, 'DB: one history row');

			my $at2 = next_time();
			my $done = insert_call(status => 'ended', agent_id => "status-$n", created_at => $at2,
				started_at => $at2, ended_at => '2026-04-02T00:00:00Z', end_reason => 'hangup');
			my $row = $t->psql("SELECT v::text FROM voice_call_logs v WHERE id = '$done'");
			$want = { id => $done, status => 'completed', agentId => "status-$n", toNumber => '+15550000000',
				batchId => undef, createdAt => $at2, startedAt => $at2, endedAt => '2026-04-02T00:00:00.000Z',
				endReason => 'hangup' };
			$s = $cl->client_ok($client, 'status-cancel', CALL_ID => $done, EXPECT_CALL => $JSON->encode($want));
			is_deeply($s, { action => 'skipped', status => 'completed' }, 'an ended call ("completed"): left alone');
			is_deeply($t->psql("SELECT v::text FROM voice_call_logs v WHERE id = '$done'"), $row, 'DB: unchanged');
			is(history_count($done), 0, 'DB: no history row');
		};

		subtest "$n: cancel with retry on timeout" => sub {
			my $id = insert_call(status => 'running', agent_id => "retry-$n");
			my $s = $cl->client_ok($client, 'cancel-retry', CALL_ID => $id, FIRST_TIMEOUT_MS => 3000, TIMEOUT_MS => 3000,
				EXPECT_FIRST_TIMEOUT => 0);
			is_deeply($s->{attempts}, [ { status => 200 } ], 'a short timeout: it succeeds at once');
			is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'DB: cancelled');
			is(history_count($id), 1, 'DB: one history row');

			# The row is locked for 3 s: the 1 ms first attempt surely times
			# out (whether or not it reached callstopd); a retry waits for the
			# lock and succeeds, or finds the call already cancelled.
			my $locked = insert_call(status => 'running', agent_id => "retry-$n");
			my $locker = $cl->lock_row($locked, 3);
			my $t0 = time;
			$s = $cl->client_ok($client, 'cancel-retry', CALL_ID => $locked, FIRST_TIMEOUT_MS => 1, TIMEOUT_MS => 10000,
				EXPECT_FIRST_TIMEOUT => 1);
			my $took = time - $t0;
			waitpid($locker, 0);
			my @att = @{ $s->{attempts} // [] };
			ok(@att >= 2 && exists $att[0]{timeout}, 'the first attempt timed out, then it retried')
				or diag($JSON->encode(\@att));
			ok((grep { exists $_->{timeout} } @att[ 0 .. $#att - 1 ]) == @att - 1, 'every attempt but the last timed out');
			ok($att[-1]{status} && ($att[-1]{status} == 200 || $att[-1]{status} == 400),
				'the last: 200, or 400 "already cancelled" when a timed-out attempt went through');
			note(sprintf('attempts %s in %.2f s', $JSON->encode(\@att), $took));
			is_deeply($t->psql("SELECT status, end_reason IS NOT NULL FROM voice_call_logs WHERE id = '$locked'"),
				[ [ 'cancelled', 't' ] ], 'DB: cancelled');
			is(history_count($locked), 1, 'DB: cancelled once (one history row), however many attempts');
		};

		subtest "$n: stop every active call of one agent" => sub {
			my $agent = "agent-$n";
			my (@active, @ended);
			for my $st (qw(initiated completed connecting ringing ended running failed running)) {
				my $id = insert_call(status => $st, agent_id => $agent, created_at => next_time(),
					$st eq 'running' ? (livekit_room => "room-$n-$minute") : ());
				push @{ $st =~ /^(completed|ended|failed)$/ ? \@ended : \@active }, $id;
			}
			my @bystanders = map { insert_call(status => 'running', agent_id => "bystander-$n", created_at => next_time()) } 1 .. 2;
			my @theirs = map { insert_call(tenant_id => $globex, status => 'running', agent_id => $agent,
				created_at => next_time()) } 1 .. 3;
			my $before = $t->psql('SELECT v::text FROM voice_call_logs v WHERE id IN ' . in_list(@ended, @bystanders, @theirs)
				. ' ORDER BY id');

			my $s = $cl->client_ok($client, 'stop-agent', AGENT_ID => $agent, PAGE_LIMIT => 3);
			is_deeply($s, { listed => 8, pages => 3, cancelled => [ sort @active ] },
				'listed its 8 calls in 3 pages, cancelled its 5 active ones');
			is_deeply($t->psql('SELECT DISTINCT status FROM voice_call_logs WHERE id IN ' . in_list(@active)),
				[ ['cancelled'] ], 'DB: those 5 cancelled');
			is($t->psql_value('SELECT count(*) FROM cancel_history WHERE call_id IN ' . in_list(@active)), 5,
				'DB: 5 history rows');
			is_deeply($t->psql('SELECT v::text FROM voice_call_logs v WHERE id IN ' . in_list(@ended, @bystanders, @theirs)
				. ' ORDER BY id'), $before,
				"DB: its ended calls, another agent's, and another tenant's calls of the same agent id: unchanged");
		};

		subtest "$n: cancel a batch and read its details" => sub {
			my $job = "batch-client-$n";
			my $b = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($acme, '$job', 'processing') RETURNING id");
			$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number, status) SELECT '$b', '+1', s"
				. " FROM unnest(ARRAY['pending', 'pending', 'pending', 'claimed', 'completed', 'completed', 'failed']) s");
			my $e = $t->psql_value("INSERT INTO voice_call_batch_entries (batch_id, to_number, status) VALUES ('$b', '+2', 'running') RETURNING id");
			my $c = insert_call(status => 'running', batch_id => $b, batch_entry_id => $e, agent_id => "batch-$n");
			$t->psql("UPDATE voice_call_batch_entries SET call_log_id = '$c' WHERE id = $e");
			# The same job_id in another tenant: untouched.
			my $theirs = $t->psql_value("INSERT INTO voice_call_batches (tenant_id, job_id, status) VALUES ($globex, '$job', 'processing') RETURNING id");
			$t->psql("INSERT INTO voice_call_batch_entries (batch_id, to_number) VALUES ('$theirs', '+3')");

			my $details = { completedCalls => 2, failedCalls => 1, cancelledCalls => 4, totalCalls => 8 };
			my $s = $cl->client_ok($client, 'batch', BATCH_ID => $job, EXPECT_DETAILS => $JSON->encode($details));
			is_deeply($s, { status => 'cancelled', details => $details }, 'cancelled; its details');
			is_deeply($t->psql("SELECT status, pending_count, claimed_count, running_count, cancelled_count FROM voice_call_batches WHERE id = '$b'"),
				[ [ 'cancelled', 0, 0, 1, 4 ] ], 'DB: the batch cancelled, 4 queued entries cancelled');
			is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$c'"), 'running', 'DB: its running call goes on');
			is_deeply($t->psql("SELECT force, cancelled_count FROM cancel_history WHERE batch_id = '$b'"), [ [ 'f', 4 ] ],
				'DB: one history row, graceful');
			is_deeply($t->psql("SELECT status, pending_count FROM voice_call_batches WHERE id = '$theirs'"),
				[ [ 'processing', 1 ] ], "DB: another tenant's batch of the same job_id: untouched");
		};

		subtest "$n: admin-cancel by OpenAI call id" => sub {
			my $oai = "call_admin_$n";
			my $id = insert_call(tenant_id => $globex, status => 'running', openai_call_id => $oai,
				livekit_room => "room-admin-$n");
			my $s = $cl->client_ok($client, 'admin', OPENAI_CALL_ID => $oai);
			is_deeply($s, { ok => JSON::PP::true }, 'canceled; a second time: 404');
			is_deeply($t->psql("SELECT status, end_reason FROM voice_call_logs WHERE id = '$id'"),
				[ [ 'cancelled', 'admin_cancel' ] ], 'DB: cancelled, end_reason admin_cancel');
			is_deeply($t->psql("SELECT tenant_id, key_id, key_kind FROM cancel_history WHERE call_id = '$id'"),
				[ [ $globex, $admin_id, 'admin_token' ] ], "DB: history: the call's tenant, the admin token");
			like($t->psql_value("SELECT idempotency_key FROM termination_outbox WHERE call_id = '$id' AND provider = 'openai'"),
				qr/^admin_hangup_\Q$oai\E_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
				'DB: the hangup is queued with admin_hangup_{call_id}_{uuid}');
		};
	}
}

# A client that gave up on a request (the 1 ms timeouts) costs no worker.
unlike($t->log, qr/worker \d+ \(pid \d+\) (?:killed by signal|exited)/, 'no callstopd worker died meanwhile')
	or diag(join "\n", grep { /killed by signal|exited/ } split /\n/, $t->log);

done_testing();
