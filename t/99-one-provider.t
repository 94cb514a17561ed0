#!/usr/bin/perl
# SPEC 6, 3.1: with only one provider configured, a call that had both gets
# the other's row written as failed "not configured" and the message says so;
# the configured one is terminated and worded by its own outcome.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use FakeProviders;
use Fixtures qw(:all);

my %want = (
	'OpenAI only'  => [ { livekit => 0 },
		'Call cancelled. LiveKit not configured; room not terminated. OpenAI call hung up.', 0, 1 ],
	'LiveKit only' => [ { openai => 0 },
		'Call cancelled. LiveKit room terminated. OpenAI not configured; call not hung up.', 1, 0 ],
);
for my $name (sort keys %want) {
	my ($only, $message, $lk, $oa) = @{ $want{$name} };
	subtest $name => sub {
		my ($t, $fake) = FakeProviders->harness(workers => 1, %$only);
		my $tid = $t->tenant('acme');
		my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
		my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-99', openai_call_id => 'rtc_99');
		my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => $id });
		is($r->{status}, 200, 'status 200') or diag($r->{body});
		is($r->{json}{message}, $message, 'message');
		is(scalar(() = $fake->requests('livekit')), $lk, "$lk DeleteRoom");
		is(scalar(() = $fake->requests('openai')), $oa, "$oa hangup");
		FakeProviders::settled($t);    # done means verified (SPEC 11)
		my $term = $t->api(GET => "/calls/status/$id", key => $key, frontend => 'fe1')->{json}{call}{termination};
		is($term->{state}, 'failed', 'termination.state failed (one target not configured)');
		is_deeply([ map { "$_->{provider}:$_->{state}" } @{ $term->{targets} } ],
			[ 'livekit:' . ($lk ? 'done' : 'failed'), 'openai:' . ($oa ? 'done' : 'failed') ], 'targets');
		$t->stop;
		$fake->stop;
	};
}

done_testing();
