#!/usr/bin/perl
# SPEC 11: a LiveKit room is done only once it is seen gone.  A normal
# cancel: DeleteRoom, then one ListParticipants read-back by the retry child,
# then done with verified_at and seconds_to_silence.  A stubborn room
# (survives the first DeleteRoom; a SIP leg that stays until removed):
# RemoveParticipant (SIP first) then DeleteRoom again, then done; every token
# passes TokenVerifier with the grants of its method.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel status_of termination);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep time);

my ($t, $fake) = FakeProviders->harness(workers => 2, conf => { 'outbox.poll_ms' => 200 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);

sub target_final ($id) {
	my $term;
	$t->wait_until(sub { $term = termination($id); $term->{state} ne 'pending' }, timeout => scaled(15));
	return $term;
}

# Each request's token carries the grant its method needs (LiveKit docs,
# "Server APIs: RoomService").
sub grants_ok ($r, $room) {
	my $v = $r->{claims}{video} // {};
	if ($r->{provider} eq 'livekit') {
		return $r->{auth} eq 'ok' && $v->{roomCreate} && !defined $v->{room};
	}
	return $r->{auth} eq 'ok' && $v->{roomAdmin} && ($v->{room} // '') eq $room;
}

subtest 'normal cancel: DeleteRoom, one ListParticipants, done with verified_at' => sub {
	my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-C1-a');
	my $r = cancel($id);
	is($r->{json}{message}, 'Call cancelled. LiveKit room terminated.', "the cancel's message keeps its wording");
	my $term = target_final($id);
	is($term->{state}, 'done', 'termination.state done');
	my ($tg) = @{ $term->{targets} };
	is($tg->{state}, 'done', 'target done');
	like($tg->{verified_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "verified_at $tg->{verified_at}");
	ok(defined $tg->{seconds_to_silence} && $tg->{seconds_to_silence} >= 0 && $tg->{seconds_to_silence} < scaled(10),
		"seconds_to_silence $tg->{seconds_to_silence}");
	my @del = $fake->requests('livekit');
	my @adm = $fake->requests('livekit_admin');
	is(scalar @del, 1, 'one DeleteRoom');
	is_deeply([ map { $_->{path} } @adm ], ['/twirp/livekit.RoomService/ListParticipants'], 'one ListParticipants');
	is($adm[0]{status}, 404, 'answered not_found: the room is gone');
	ok(grants_ok($_, 'room-C1-a'), "$_->{path}: token verified, grants right") for @del, @adm;
	ok($adm[0]{time} >= $del[0]{time}, 'the read-back after the DeleteRoom');
	sleep 1;
	is(scalar(() = $fake->requests('all')), 2, 'nothing more afterwards');
};

for my $mode (qw(survive sip)) {
	subtest "stubborn room ($mode): RemoveParticipant, DeleteRoom again, then done" => sub {
		$fake->reset;
		my $room = "room-C1-$mode";
		$fake->control(room_modes => { $room => $mode });
		my $m0 = $t->metrics;
		my $id = fx_call($t, $tid, status => 'running', livekit_room => $room);
		is(cancel($id)->{json}{message}, 'Call cancelled. LiveKit room terminated.', 'message');
		my $term = target_final($id);
		is($term->{state}, 'done', 'termination.state done');
		ok($term->{targets}[0]{verified_at}, 'verified_at set');
		my @all = grep { $_->{provider} =~ /^livekit/ } $fake->requests('all');
		my @seq = map { ($_->{path} =~ m{/(\w+)$})[0] . ($_->{identity} ? "($_->{identity})" : '') } @all;
		note("@seq");
		my @want = $mode eq 'survive'
			? ('DeleteRoom', 'ListParticipants', "RemoveParticipant(sip_$room)", "RemoveParticipant(agent-$room)",
				'DeleteRoom', 'ListParticipants')
			: ('DeleteRoom', 'ListParticipants', "RemoveParticipant(sip_$room)", 'DeleteRoom', 'ListParticipants');
		is_deeply(\@seq, \@want, 'read back, SIP participant removed first, deleted again, read back: gone');
		ok(grants_ok($_, $room), "$seq[$_->{i}]: TokenVerifier ok, grants right")
			for map { { %{ $all[$_] }, i => $_ } } 0 .. $#all;
		my $m1 = $t->metrics;
		my $k = 'callstop_termination_escalations_total{provider="livekit"}';
		is($m1->{$k} - $m0->{$k}, 1, 'one escalation counted');
	};
}

subtest 'termination.state (SPEC 11): pending while sent, failed if unknown' => sub {
	my %cases = (
		'sent'              => [ [qw(livekit sent)] ],
		'done+unknown'      => [ [qw(openai done)], [qw(livekit unknown)] ],
		'done+sent+unknown' => [ [qw(openai done)], [qw(livekit sent)], [qw(livekit unknown)] ],
		'done+done'         => [ [qw(openai done)], [qw(livekit done)] ],
	);
	my %want = ('sent' => 'pending', 'done+unknown' => 'failed', 'done+sent+unknown' => 'pending',
		'done+done' => 'done');
	for my $name (sort keys %cases) {
		my $c = fx_call($t, $tid, status => 'cancelled');
		my $i = 0;
		for my $row (@{ $cases{$name} }) {
			$i++;
			# far in the future: the retry child leaves these rows alone
			$t->psql(qq{INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, attempts,
				next_attempt_at) VALUES ($tid, '$c', '$row->[0]', 'x$i', '$row->[1]', 1, now() + interval '1 day')});
		}
		is(termination($c)->{state}, $want{$name}, "$name: $want{$name}");
	}
};

subtest 'metrics: seconds to silence' => sub {
	my $m = $t->metrics;
	is($m->{'callstop_termination_seconds_to_silence_count{provider="livekit"}'}, 3, 'three rooms verified');
	is($m->{'callstop_termination_seconds_to_silence_bucket{provider="livekit",le="+Inf"}'}, 3, '+Inf bucket');
	ok(exists $m->{'callstop_termination_seconds_to_silence_bucket{provider="livekit",le="0.05"}'}, 'a 50 ms bucket');
	ok(exists $m->{'callstop_termination_seconds_to_silence_bucket{provider="livekit",le="30"}'}, 'a 30 s bucket');
	is($m->{'callstop_termination_unknown_total{provider="livekit"}'}, 0, 'no unknown');
};

done_testing();
