#!/usr/bin/perl
# SPEC 8 from the clients of t/83 (t/clients/clients.py: Python + requests,
# t/clients/clients.mjs: Node's fetch) given an Idempotency-Key header
# (IDEMPOTENCY_KEY): their cancel-with-retry still works, and with the key a
# retry after a timeout gets the first attempt's answer (200 "Call cancelled
# successfully", a replay) instead of 400 "Cannot cancel call with status:
# cancelled"; an attempt answered 409 idempotency_key_in_flight is asked
# again after its Retry-After.  The call is cancelled once.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Clients;
use Api qw(q_);
use JSON::PP ();

# The first attempt of the timeout scenario waits on a row lock held
# scaled(5) s: well inside its statement_timeout, whatever the scale (at the
# default 5 s it would be cancelled, 503, and its retry would run instead of
# being replayed).
my $t = CallstopTest->new(workers => 3, conf => { database_statement_timeout_ms => scaled(30) * 1000 });
my $JSON = JSON::PP->new->canonical;
my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $cl = Clients->new($t, CALLSTOP_API_KEY => $key, CALLSTOP_WORKSPACE_ID => 'ws_acme');

sub insert_call () {
	return $t->psql_value("INSERT INTO voice_call_logs (tenant_id, to_number, status) VALUES ($acme,"
		. " '+15550000000', 'running') RETURNING id");
}

sub history_count ($id) { return $t->psql_value("SELECT count(*) FROM cancel_history WHERE call_id = '$id'") }

for my $client ($cl->clients) {
	my $n = $client->{name};
	SKIP: {
		skip "$n: $client->{missing}", 2 if $client->{missing};

		subtest "$n: cancel with a key, at once" => sub {
			my $id = insert_call();
			my $s = $cl->client_ok($client, 'cancel-retry', CALL_ID => $id, FIRST_TIMEOUT_MS => 5000,
				TIMEOUT_MS => 5000, EXPECT_FIRST_TIMEOUT => 0, IDEMPOTENCY_KEY => "b4-$n-1");
			is_deeply($s->{attempts}, [ { status => 200 } ], 'one attempt, 200');
			is(history_count($id), 1, 'cancelled once');
		};

		subtest "$n: the first attempt times out inside callstopd; the retry gets its answer" => sub {
			my $id = insert_call();
			# the first attempt reaches callstopd, claims the key and waits
			# for the row; the client gives up on it after 2 s
			my $locker = $cl->lock_row($id, scaled(5));
			my $s = $cl->client_ok($client, 'cancel-retry', CALL_ID => $id, FIRST_TIMEOUT_MS => scaled(2) * 1000,
				TIMEOUT_MS => scaled(10) * 1000, EXPECT_FIRST_TIMEOUT => 1, IDEMPOTENCY_KEY => "b4-$n-2");
			waitpid($locker, 0);
			my @att = @{ $s->{attempts} // [] };
			note($JSON->encode(\@att));
			ok(exists $att[0]{timeout}, 'the first attempt timed out');
			# the retry waits idempotency_wait (1 s) for the key, the first
			# attempt holds it scaled(3) s more: 409, asked again after Retry-After
			ok((grep { ($_->{status} // 0) == 409 } @att[ 1 .. $#att - 1 ]),
				'a retry while the first ran: 409 idempotency_key_in_flight, asked again');
			is_deeply($att[-1], { status => 200, replayed => JSON::PP::true },
				'the last: 200, the first attempt\'s answer (replayed), not 400 "already cancelled"');
			ok(!(grep { ($_->{status} // 0) == 400 } @att), 'no attempt got 400');
			is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$id'"), 'cancelled', 'cancelled');
			is(history_count($id), 1, 'cancelled once');
		};
	}
}

done_testing;
