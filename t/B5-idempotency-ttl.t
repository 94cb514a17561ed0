#!/usr/bin/perl
# SPEC 8, retention: with idempotency_ttl = 2 s a key is replayed within its
# 2 s, and a reuse after them runs again; the retry child prunes expired keys
# (callstop_idempotency_keys_pruned_total counts them), in batches of 1000
# a statement.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my $t = CallstopTest->new(workers => 2, conf => { idempotency_ttl => 2 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

sub keyed ($idem, $json) {
	return $t->request(POST => '/calls/cancel', headers => { %auth, 'Idempotency-Key' => $idem }, body => $json);
}

sub pruned () { return $t->metrics->{callstop_idempotency_keys_pruned_total} // -1 }

subtest 'replayed within the TTL, run again after it' => sub {
	my $id = fx_call($t, $tid, status => 'running');
	my $t0 = time;
	my $first = keyed('b5-ttl', { resource_id => $id });
	is($first->{json}{message}, 'Call cancelled.', 'first: cancelled');
	my $again = keyed('b5-ttl', { resource_id => $id });
	if (time - $t0 < 1.5) {
		is($again->{headers}{'idempotent-replayed'}, 'true', 'within 2 s: a replay');
		is($again->{body}, $first->{body}, '... of the first answer');
	} else {
		pass('(too slow a machine to check the replay within 2 s)') for 1 .. 2;
	}
	sleep 2.2 - (time - $t0) if time - $t0 < 2.2;
	my $later = keyed('b5-ttl', { resource_id => $id });
	is($later->{status}, 200, 'after 2 s: 200');
	ok(!exists $later->{headers}{'idempotent-replayed'}, 'after 2 s: it ran again');
	is($later->{json}{message}, 'Call already in terminal state: cancelled', '... and found the call cancelled');
	my $replay = keyed('b5-ttl', { resource_id => $id });
	if (time - $t0 < 4) {
		is($replay->{body}, $later->{body}, 'the new answer is the one kept now');
	} else {
		pass('(too slow a machine to check the replay within 2 s)');
	}
};

subtest 'the retry child prunes expired keys, 1000 a statement' => sub {
	my $before = pruned();
	# every DELETE statement on the table writes how many rows it deleted
	$t->psql(q{
		CREATE TABLE test_prune_statements (id serial, n integer);
		CREATE FUNCTION test_prune_statement() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO test_prune_statements (n) SELECT count(*) FROM old_rows; RETURN NULL; END $$;
		CREATE TRIGGER test_prune_statement AFTER DELETE ON callstop_idempotency REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION test_prune_statement();
	});
	$t->psql(q{INSERT INTO callstop_idempotency (scope, key, fingerprint, status, body, expires_at)
		SELECT 'tenant:0', 'old-' || g, 'x', 200, '{}', now() - interval '1 hour' FROM generate_series(1, 2500) g});
	ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM callstop_idempotency WHERE key LIKE 'old-%'}) == 0 },
		timeout => 30), 'every expired key deleted');
	cmp_ok(pruned() - $before, '>=', 2500, 'callstop_idempotency_keys_pruned_total counts them');
	my @n = map { $_->[0] } @{ $t->psql('SELECT n FROM test_prune_statements WHERE n > 0 ORDER BY id') };
	cmp_ok(scalar @n, '>=', 3, 'in three statements or more: ' . join(' + ', @n));
	is(scalar(grep { $_ > 1000 } @n), 0, '... none deleting more than 1000');
	like($t->log, qr/idempotency: \d+ expired key\(s\) pruned/, 'logged');
	ok($t->wait_until(sub { $t->psql_value('SELECT count(*) FROM callstop_idempotency') == 0 }, timeout => 30),
		'and the test\'s own key once it expired');
};

done_testing;
