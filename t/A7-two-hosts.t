#!/usr/bin/perl
# Several hosts (SPEC 1, doc/several-hosts.md): two callstopd instances on
# TCP, one database, behind one nginx upstream with the site's
# fastcgi_next_upstream settings.  Both serve; one is stopped in the middle of
# a load of cancels and reads, and every request still succeeds: what the
# stopped one dropped is retried on the other, and a cancel tried twice
# changes nothing the second time.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Time::HiRes qw(sleep);

my $t = CallstopTest->new(workers => 2, instances => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');

like($t->instance_listen(0), qr/^127\.0\.0\.1:\d+$/, 'instance 0 on TCP');
like($t->instance_listen(1), qr/^127\.0\.0\.1:\d+$/, 'instance 1 on TCP');
isnt($t->instance_listen(0), $t->instance_listen(1), '... another port');
like(CallstopTest::_slurp($t->tmpdir . '/nginx/callstop.conf'), qr/upstream callstop \{\n\s+server 127\.0\.0\.1:\d+ [^\n]*\n\s+server 127\.0\.0\.1:\d+/,
	'nginx: one upstream of both');
like(CallstopTest::_slurp($t->tmpdir . '/nginx/callstop.conf'), qr/fastcgi_next_upstream error timeout non_idempotent;/,
	'... with the site\'s fastcgi_next_upstream');

my @calls = map { $_->[0] } @{ $t->psql(qq{INSERT INTO voice_call_logs (tenant_id, agent_id, to_number, status, started_at)
	SELECT $tid, 'agent-1', '+1555' || lpad(g::text, 7, '0'), 'running', now() FROM generate_series(1, 3000) g
	RETURNING id}) };
is(scalar @calls, 3000, '3000 running calls');

my $instance1 = $t->instance_pid(1);
my @instance1_children = $t->_children($instance1);

my $load = $t->load_start(procs => 4, duration => 10, request => sub ($p, $n) {
	my $call = $calls[ (($p - 1) * 750 + $n) % @calls ];
	return $n % 2
		? [ GET => "/calls/status/$call", headers => \%auth ]
		: [ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $call } ];
});
sub served ($log) { return scalar(() = $log =~ /route=calls\.\w+ status=200/g) }
ok($t->wait_until(sub { served($t->log) >= 20 && served($t->instance_log(1)) >= 20 }, timeout => 8),
	'both instances serve before the stop');
ok($t->stop_instance(1, signal => 'TERM'), 'instance 1 stopped (fast stop, SIGTERM) in the middle of the load');
my $res = $t->load_wait($load);
cmp_ok($res->{total}, '>=', 50, "$res->{total} requests");
is_deeply($res->{failed}, [], '... all succeeded') or diag(explain($res->{by_status}));
diag("two hosts, one stopped mid-load: $res->{total} requests, " . scalar(@{ $res->{failed} }) . ' failed');
ok(!grep({ !CallstopTest::_gone($_) } $instance1, @instance1_children), 'nothing of instance 1 is left running');

my $reqs0 = () = $t->log =~ /req=/g;
$t->api(GET => "/calls/status/$calls[0]", key => $key, frontend => 'fe1') for 1 .. 5;
my $reqs1 = () = $t->log =~ /req=/g;
is($reqs1 - $reqs0, 5, 'instance 0 serves everything now');

is($t->psql_value(q{SELECT count(*) FROM (SELECT call_id FROM cancel_history WHERE call_id IS NOT NULL
	GROUP BY call_id HAVING count(*) > 1) x}), 0, 'no call was cancelled twice (one history row each)');
is($t->psql_value(q{SELECT count(*) FROM voice_call_logs c WHERE c.status = 'cancelled'
	AND NOT EXISTS (SELECT 1 FROM cancel_history h WHERE h.call_id = c.id)}), 0, '... and none without its row');

# Back: instance 1 starts again on the same port and shares the work again.
$t->start_instance(1);
ok($t->instance_pid(1), 'instance 1 restarted');

done_testing();
