#!/usr/bin/perl
# SPEC 8 on the routes of SPEC 10 and 12: POST /batch/{id}/pause and
# /resume, POST /calls/cancel-matching, POST /suppressions and
# DELETE /suppressions/{number} take an Idempotency-Key like the cancels.
# The repeat gets the first answer byte for byte with Idempotent-Replayed:
# true and changes nothing (no second history row, no second pause, no
# number re-added, no second termination request); the same key on another
# body is 422; a pause with hangup whose room is deleted after the commit
# stores the answer the client got.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup);
use FakeProviders;
use Fixtures qw(:all);

my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 100 });
my $tid = $t->tenant('acme', workspace_id => 'ws_acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my %U = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

sub req ($method, $path, $idem, $json = undef) {
	my %h = (%U, defined $idem ? ('Idempotency-Key' => $idem) : ());
	return $t->request($method, $path, headers => \%h, defined $json ? (body => $json) : ());
}

sub snapshot () {
	my $s = fx_snapshot($t);
	$s->{suppressions} = $t->psql_value(q{SELECT count(*) || ':' || md5(coalesce(string_agg(number || coalesce(reason, ''), '|' ORDER BY id), ''))
		FROM suppressions});
	return $s;
}

sub replay_ok ($name, $method, $path, $idem, $json = undef) {
	my $first = req($method, $path, $idem, $json);
	FakeProviders::settled($t);
	my $before = snapshot();
	my $lk = scalar(() = $fake->requests('livekit'));
	my $again = req($method, $path, $idem, $json);
	subtest $name => sub {
		ok(!exists $first->{headers}{'idempotent-replayed'}, 'the first answer is not a replay');
		is($again->{status}, $first->{status}, "repeat: same status ($first->{status})");
		is($again->{body}, $first->{body}, 'repeat: the same body, byte for byte');
		is($again->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
		is_deeply(snapshot(), $before, 'nothing changed: history, batches, entries, calls, outbox, suppressions');
		is(scalar(() = $fake->requests('livekit')), $lk, 'no second termination request');
		is($t->psql_value("SELECT body FROM callstop_idempotency WHERE key = '$idem'"), $first->{body},
			'the stored body is the answer the client got');
	};
	return $first;
}

# Pause with hangup: one running call with a room, deleted after the commit.
my $b = fx_batch($t, $tid, 'batch-b6', 5);
my @e = fx_claim($t, $b, 'd1', 2);
my $c = fx_start($t, $e[0], 'd1', room => 'room-b6-1');
fx_report($t, $c, 'running');
my $r = replay_ok('pause, hangup', POST => '/batch/batch-b6/pause', 'pause-1', { active_calls => 'hangup' });
is($r->{status}, 200, 'the pause ran');
is($r->{json}{message}, 'Batch paused. 1 claimed entries released. 1 active call(s) terminated.', 'its message');
is(scalar(() = $fake->requests('livekit')), 1, 'one DeleteRoom');
is($t->psql_value("SELECT count(*) FROM cancel_history WHERE batch_id = '$b' AND action = 'pause'"), 1,
	'one pause history row');

$r = replay_ok('resume', POST => '/batch/batch-b6/resume', 'resume-1');
is($r->{json}{status}, 'processing', 'resumed to processing');
# The pause key again, after the resume: still the pause's answer, and the
# batch stays resumed.
$r = req(POST => '/batch/batch-b6/pause', 'pause-1', { active_calls => 'hangup' });
is($r->{headers}{'idempotent-replayed'}, 'true', 'the old pause key is replayed after the resume');
is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$b'"), 'processing',
	'and does not pause the batch again');
is(req(POST => '/batch/batch-b6/pause', 'pause-1', { active_calls => 'finish' })->{status}, 422,
	'the pause key with another body: 422');

# Cancel by filter, dry run and real run.
my @calls = map { fx_call($t, $tid, status => 'ringing', agent_id => 'agent-b6') } 1 .. 3;
$r = replay_ok('cancel-matching, dry run', POST => '/calls/cancel-matching', 'match-dry',
	{ filter => { agent_id => 'agent-b6' }, dry_run => JSON::PP::true });
is($r->{json}{matched_calls}, 3, 'the dry run matched 3');
$r = replay_ok('cancel-matching', POST => '/calls/cancel-matching', 'match-1', { filter => { agent_id => 'agent-b6' } });
is($r->{json}{cancelled_count}, 3, 'cancelled 3');
is($t->psql_value(q{SELECT count(*) FROM cancel_history WHERE action = 'cancel_matching'}), 3,
	'one history row per call, once');

# Suppressions: add, then remove.
$r = replay_ok('suppressions add', POST => '/suppressions', 'sup-1', { numbers => ['+15550100001'], reason => 'asked' });
is($r->{json}{added}, 1, 'added once');
$r = replay_ok('suppressions remove', DELETE => '/suppressions/%2B15550100001', 'unsup-1');
is($r->{json}{removed}, JSON::PP::true, 'removed once');
$r = req(POST => '/suppressions', 'sup-1', { numbers => ['+15550100001'], reason => 'asked' });
is($r->{headers}{'idempotent-replayed'}, 'true', 'the add key is replayed after the removal');
is($t->psql_value(q{SELECT count(*) FROM suppressions}), 0, 'and does not add the number again');
is(req(POST => '/suppressions', 'sup-1', { numbers => ['+15550100002'] })->{status}, 422,
	'the add key with another body: 422');
is(req(DELETE => '/suppressions/%2B15550100009', 'unsup-404')->{status}, 404, 'a removal of an unknown number: 404');
is($t->psql_value(q{SELECT status FROM callstop_idempotency WHERE key = 'unsup-404'}), 404, 'the 404 is stored');
is(req(POST => '/suppressions', 'bad key!', { numbers => ['+15550100003'] })->{status}, 400, 'a bad key: 400');
is($t->psql_value(q{SELECT count(*) FROM suppressions}), 0, 'and nothing added');

done_testing;
