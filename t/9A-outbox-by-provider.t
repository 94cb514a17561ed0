#!/usr/bin/perl
# SPEC 3.1, 6; issue 9 item 3: a cancelled call's message words each target
# by the outcome of that target's own outbox row.  callstop_cancel() returns
# the rows it wrote as (id, provider) pairs (sql/006_contracts.sql); nothing
# relies on the LiveKit row having the lower id.  Here the outbox ids are made
# to count down, so that the OpenAI row comes first: a caller that matched
# rows to targets by position would swap the two outcomes.  Also: ids reach
# SQL as text[] literals, so quotes, backslashes, braces, commas and the word
# NULL are ids like any other.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);

# Outbox ids from now on: 1000000, 999999, ...
sub ids_count_down ($t) {
	$t->psql('ALTER TABLE termination_outbox ALTER COLUMN id SET INCREMENT BY -1 RESTART WITH 1000000');
}

# The providers of a call's outbox rows, by id.
sub providers_by_id ($t, $id) {
	return $t->psql_value("SELECT string_agg(provider, ',' ORDER BY id) FROM termination_outbox"
		. " WHERE call_id = '$id'");
}

subtest 'both providers, OpenAI row first: LiveKit done, OpenAI 400' => sub {
	my ($t, $fake) = FakeProviders->harness(workers => 1);
	my $tid = $t->tenant('acme');
	my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
	ids_count_down($t);
	$fake->control(livekit => '200', openai => '400');
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-9a', openai_call_id => 'rtc_9a');
	my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id });
	is($r->{status}, 200, 'status 200') or diag($r->{body});
	is(providers_by_id($t, $id), 'openai,livekit', 'the OpenAI row has the lower id');
	is($r->{json}{message}, 'Call cancelled. LiveKit room terminated. OpenAI hangup failed.', 'message');
	FakeProviders::settled($t);    # done means verified (SPEC 11)
	my $term = $t->api(GET => "/calls/status/$id", key => $key, frontend => 'fe1')->{json}{call}{termination};
	my %by = map { $_->{provider} => $_->{state} } @{ $term->{targets} };
	is_deeply(\%by, { livekit => 'done', openai => 'failed' }, 'each row holds its own outcome');

	# text[]: every id arrives as itself, in order, found or not
	my @odd = ('a"b', 'c\\d', 'NULL', '{x,y}', ' sp ', 'e,f');
	my $c = fx_call($t, $tid, status => 'running');
	$r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
		json => { resource_id => [ @odd[0 .. 3], $c, @odd[4 .. 5] ] });
	is($r->{status}, 200, 'odd ids: status 200') or diag($r->{body});
	is_deeply([ map { "$_->{resource_id}:$_->{status}" } @{ $r->{json}{results} // [] } ],
		[ (map { "$_:not_found" } @odd[0 .. 3]), "$c:cancelled", map { "$_:not_found" } @odd[4 .. 5] ],
		'odd ids: each one itself, in order');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$c'"), 'cancelled', 'the real one cancelled');
	$t->stop;
	$fake->stop;
};

for my $case (['LiveKit only', { openai => 0 },
		'Call cancelled. LiveKit room terminated. OpenAI not configured; call not hung up.', 1, 0],
	      ['OpenAI only', { livekit => 0 },
		'Call cancelled. LiveKit not configured; room not terminated. OpenAI call hung up.', 0, 1]) {
	my ($name, $only, $message, $lk, $oa) = @$case;
	subtest "$name, OpenAI row first" => sub {
		my ($t, $fake) = FakeProviders->harness(workers => 1, %$only);
		my $tid = $t->tenant('acme');
		my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
		ids_count_down($t);
		my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-9b', openai_call_id => 'rtc_9b');
		my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id });
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is(providers_by_id($t, $id), 'openai,livekit', 'the OpenAI row has the lower id');
		is($r->{json}{message}, $message, 'message');
		is(scalar(() = $fake->requests('livekit')), $lk, "$lk DeleteRoom");
		is(scalar(() = $fake->requests('openai')), $oa, "$oa hangup");
		$t->stop;
		$fake->stop;
	};
}

done_testing();
