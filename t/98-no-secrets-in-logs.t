#!/usr/bin/perl
# SPEC 6: "Secrets come from files named in the config, never from the
# command line" - and they never reach a log: neither the LiveKit API secret,
# nor the OpenAI key, nor a LiveKit token (JWT) appears in any line of the
# callstopd log (and its stderr), the nginx error log or the access log,
# whatever happened to the requests (done, retried, dead-lettered, timed
# out, bad credentials), at log_level debug.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Api qw(api_setup cancel);
use FakeProviders;
use Fixtures qw(:all);
use Time::HiRes qw(sleep);

my ($t, $fake) = FakeProviders->harness(workers => 2,
	conf => { log_level => 'debug', 'outbox.backoff_base_ms' => 100, 'outbox.poll_ms' => 100,
		'outbox.max_attempts' => 3, 'outbox.timeout_ms' => 500 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
api_setup($t, key => $key);
my $heppu = $t->key(tenant => 'acme', frontend_id => 'fe2');
my $admin = $t->admin_token;

my $n = 0;
for my $mode ('200', '404', '500', '401', '400', 'hang', [qw(500 200)]) {
	$fake->control(livekit => $mode, openai => $mode);
	$n++;
	my $id = fx_call($t, $tid, status => 'running', livekit_room => "room-98-$n", openai_call_id => "rtc_98_$n");
	is(cancel($id)->{status}, 200, 'cancel (' . (ref $mode ? "@$mode" : $mode) . ')');
}
$fake->control(livekit => '500', openai => '500');
my $id = fx_call($t, $tid, status => 'running', livekit_room => 'room-98-admin', openai_call_id => 'rtc_98_admin');
is($t->request(POST => '/api/v1/admin/cancel/rtc_98_admin', headers => { 'X-Admin-Token' => $admin })->{status}, 200,
	'admin cancel');
my $h = fx_call($t, $tid, status => 'running', livekit_room => 'room-98-heppu');
is($t->request(DELETE => "/api/v1/calls/$h", headers => { 'x-api-key' => $heppu })->{status}, 200, 'heppu DELETE');

# Let the retry child work through the failures and dead-letter them.
ok($t->wait_until(sub { $t->psql_value(q{SELECT count(*) FROM termination_outbox WHERE state = 'pending'}) == 0 },
	timeout => 20, interval => 0.2), 'the outbox settled (nothing pending)');

# A restart and a reload: their start-up lines too.
$t->restart_callstopd;
kill 'HUP', $t->callstopd_pid;
sleep 0.5;

my @tokens = map { ($_->{headers}{authorization} // '') =~ /^Bearer (.+)$/ ? $1 : () } $fake->requests;
my @jwts = grep { /\./ } @tokens;
cmp_ok(scalar @jwts, '>', 10, scalar(@jwts) . ' LiveKit tokens seen by the fake');
my %secret = (
	'LiveKit API secret' => $fake->livekit_secret,
	'OpenAI API key'     => $fake->openai_key,
	'admin token'        => $admin,
	'API key'            => $key,
	'heppu API key'      => $heppu,
);
my %logs = ('callstopd log' => $t->log, 'nginx error log' => $t->nginx_log, 'nginx access log' => $t->access_log);
cmp_ok(length $logs{'callstopd log'}, '>', 1000, 'the callstopd log has content');
like($logs{'callstopd log'}, qr/outbox \d+: livekit room-98-\d+: HTTP 500/, 'it logged the failures');
for my $log (sort keys %logs) {
	my $text = $logs{$log};
	for my $what (sort keys %secret) {
		unlike($text, qr/\Q$secret{$what}\E/, "$log: no $what");
	}
	my @seen = grep { index($text, $_) >= 0 } @jwts;
	is(scalar @seen, 0, "$log: none of the " . scalar(@jwts) . ' LiveKit tokens');
	unlike($text, qr/eyJ[\w-]{10,}\.eyJ[\w-]{10,}/, "$log: nothing shaped like a JWT");
	# Halves of the secrets (a truncated or split print)
	for my $what ('LiveKit API secret', 'OpenAI API key') {
		my $s = $secret{$what};
		unlike($text, qr/\Q${\ substr($s, 0, 16)}\E|\Q${\ substr($s, -16)}\E/, "$log: no part of the $what");
	}
}

done_testing();
