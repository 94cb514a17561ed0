#!/usr/bin/perl
# Tenancy (SPEC 2): a resource of another tenant is treated as not found by
# every unified route; nothing of the other tenant changes.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2);
my $ta = $t->tenant('acme');
my $tb = $t->tenant('beta');
my $ka = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $kb = $t->key(tenant => 'beta', frontend_id => 'fe1');
my $T = JSON::PP::true;

sub as_b ($method, $path, @o) { return $t->api($method, $path, key => $kb, frontend => 'fe1', @o) }
sub as_a ($method, $path, @o) { return $t->api($method, $path, key => $ka, frontend => 'fe1', @o) }

# Tenant A: a standalone running call, a processing batch with a running call,
# and a batch whose job_id B also uses.
my $a_call = fx_call($t, $ta, status => 'running', livekit_room => 'room-a', openai_call_id => 'rtc_a');
my $a_batch = fx_batch($t, $ta, 'batch-a', 20);
my @a_entries = fx_claim($t, $a_batch, 'd1', 3);
my $a_bcall = fx_start($t, $a_entries[0], 'd1', room => 'room-ab');
my $a_shared = fx_batch($t, $ta, 'batch-shared', 4);
my $b_shared = fx_batch($t, $tb, 'batch-shared', 6);

my $a_cursor = as_a(GET => '/calls/status/batch-a?limit=5')->{json}{next_cursor};
ok(defined $a_cursor, "A's own page has a cursor");
is(as_a(GET => "/calls/status/$a_call")->{status}, 200, 'A sees its call');

my $a_before = fx_snapshot($t, tenant => $ta);

subtest 'status: 404' => sub {
	is_unified_error(as_b(GET => "/calls/status/$a_call"), 404, 'not_found', "A's call");
	is_unified_error(as_b(GET => '/calls/status/' . uc $a_call), 404, 'not_found', "A's call, upper case");
	is_unified_error(as_b(GET => "/calls/status/$a_bcall"), 404, 'not_found', "A's batch call");
	is_unified_error(as_b(GET => '/calls/status/batch-a'), 404, 'not_found', "A's batch");
	is_unified_error(as_b(GET => '/calls/status/batch-a?status=pending&limit=2'), 404, 'not_found',
		"A's batch with a filter");
	is_unified_error(as_b(GET => "/calls/status/batch-a?limit=5&cursor=$a_cursor"), 404, 'not_found',
		"A's batch with A's cursor");
};

subtest 'page: B cannot use a cursor of A on its own batch' => sub {
	is_unified_error(as_b(GET => "/calls/status/batch-shared?limit=5&cursor=$a_cursor"), 400, 'invalid_request',
		"B's batch with A's cursor");
	my $r = as_b(GET => '/calls/status/batch-shared');
	is($r->{status}, 200, "B sees its own batch-shared");
	is_deeply([ $r->{json}{batch}{id}, $r->{json}{batch}{counts}{total} ], [ $b_shared, 6 ], "... B's, not A's");
	my %a_ids = map { $_->[0] => 1 } @{ $t->psql("SELECT id FROM voice_call_batch_entries WHERE batch_id = '$a_shared'") };
	ok(!grep({ $a_ids{ $_->{id} } } @{ $r->{json}{entries} }), "no entry of A's batch-shared");
};

subtest 'cancel: not_found results' => sub {
	my $r = as_b(POST => '/calls/cancel', json => { resource_id => [ $a_call, 'batch-a', $a_bcall, uc $a_call ],
		force => $T });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is_deeply($r->{json}, { results => [
		{ resource_id => $a_call, resource_type => 'call', status => 'not_found', cancelled_count => 0,
			message => 'Call not found' },
		{ resource_id => 'batch-a', resource_type => 'batch', status => 'not_found', cancelled_count => 0,
			message => 'Batch not found' },
		{ resource_id => $a_bcall, resource_type => 'call', status => 'not_found', cancelled_count => 0,
			message => 'Call not found' },
	], total_cancelled => 0 }, 'all not found');

	$r = as_b(POST => '/calls/cancel', json => { resource_id => $a_call });
	is_deeply($r->{json}, { results => [ { resource_id => $a_call, resource_type => 'call', status => 'not_found',
		cancelled_count => 0, message => 'Call not found' } ], total_cancelled => 0, resource_id => $a_call,
		resource_type => 'call', status => 'not_found', cancelled_count => 0, message => 'Call not found' },
		'single id: not found');

	is_unified_error(as_b(POST => '/batch/batch-cancel/batch-a?force=true'), 404, 'not_found',
		"batch-cancel of A's job_id");
	is_unified_error(as_b(POST => "/batch/batch-cancel/$a_batch?force=true"), 404, 'not_found',
		"batch-cancel of A's batch UUID");
	is_unified_error(as_b(POST => "/batch/batch-cancel/$a_shared"), 404, 'not_found',
		"batch-cancel of the UUID of A's batch-shared");
};

subtest "B cancels its own batch-shared: A's is untouched" => sub {
	my $r = as_b(POST => '/calls/cancel', json => { resource_id => 'batch-shared', force => $T });
	is_deeply($r->{json}{results}, [ { resource_id => 'batch-shared', resource_type => 'batch', status => 'cancelled',
		cancelled_count => 6, message => 'Batch cancelled. 6 pending entries cancelled.' } ], "B's batch cancelled");
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b_shared'"), 'cancelled', "B's row");
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$a_shared'"), 'pending', "A's row");
	$r = as_b(POST => '/batch/batch-cancel/batch-shared?force=true');
	is_deeply($r->{json}, { batch_id => $b_shared, job_id => 'batch-shared', status => 'cancelled',
		cancelled_count => 0, message => 'Batch already in terminal state: cancelled' }, 'batch-cancel names B\'s');
};

is_deeply(fx_snapshot($t, tenant => $ta), $a_before, "nothing of tenant A changed");
is($t->psql_value("SELECT count(*) FROM cancel_history WHERE tenant_id = $ta"), 0, 'no history row for A');

subtest 'A still controls its own resources' => sub {
	my $r = as_a(POST => '/calls/cancel', json => { resource_id => [ $a_call, 'batch-a', 'batch-shared' ],
		force => $T });
	is_deeply([ map { [ $_->{status}, $_->{cancelled_count} ] } @{ $r->{json}{results} } ],
		[ [ cancelled => 1 ], [ cancelled => 20 ], [ cancelled => 4 ] ], "A cancels its call and batches");
	is($t->psql_value("SELECT count(*) FROM cancel_history WHERE tenant_id = $tb"), 1, "B's history unchanged");
	is($t->psql_value("SELECT count(*) FROM cancel_history WHERE tenant_id = $ta"), 3, "A's history rows");
};

done_testing();
