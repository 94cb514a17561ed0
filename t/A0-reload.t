#!/usr/bin/perl
# SIGHUP reload under a steady stream of requests (SPEC 7): the new
# configuration is in effect, the old workers drain and are gone, the
# listening socket is never closed, and not one request fails.  A broken file
# on SIGHUP is logged and the running configuration kept, still serving.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);
use Time::HiRes qw(sleep);

my $t = CallstopTest->new(workers => 2, conf => { max_resources => 5 });
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my %auth = ('X-API-Key' => $key, 'X-Frontend-ID' => 'fe1');
my @calls = map { fx_call($t, $tid, status => 'completed') } 1 .. 10;
my $sock = $t->tmpdir . '/callstopd.sock';
my $inode = (stat $sock)[1];

sub cancel_ids ($n) {
	return $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1',
		json => { resource_id => [ map { fx_uuid() } 1 .. $n ] });
}

sub generation () { return $t->status_json->{generation} }

is(cancel_ids(3)->{status}, 200, 'before: 3 ids are within max_resources 5');
my @gen0 = $t->worker_pids;
is(scalar @gen0, 3, 'before: two workers and the retry child');

# Reads and (no-op) cancels, 4 clients, for 8 seconds.
my $load = $t->load_start(procs => 4, duration => 8, request => sub ($p, $n) {
	my $call = $calls[ ($p * 7 + $n) % @calls ];
	return $n % 3 == 0
		? [ POST => '/calls/cancel', headers => \%auth, json => { resource_id => $call } ]
		: [ GET => "/calls/status/$call", headers => \%auth ];
});

sleep 1.5;
$t->write_conf(conf => { workers => 3, max_resources => 2 });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->log =~ /reload: generation 1, 3 workers/ }, timeout => 10), 'reload: generation 1');
ok($t->wait_until(sub { !grep { !CallstopTest::_gone($_) } @gen0 }, timeout => 15),
	'the old generation drained and exited');
my @gen1 = $t->worker_pids;
is(scalar @gen1, 4, 'three workers and a retry child now');
ok(!grep({ my $p = $_; grep { $_ == $p } @gen0 } @gen1), '... none of them an old one');
is(generation(), 1, 'the status page shows generation 1');

sleep 1;
# A broken file: logged, the running configuration kept.
$t->write_conf(conf => { workers => 'many' });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->log =~ /reload failed, keeping the running configuration: .*workers: expected an integer/ },
	timeout => 10), 'a broken file is logged and not loaded');
sleep 1;
is_deeply([ $t->worker_pids ], \@gen1, '... the same workers go on');
is(generation(), 1, '... still generation 1');

my $res = $t->load_wait($load);
cmp_ok($res->{total}, '>=', 50, "a steady stream: $res->{total} requests");
is_deeply($res->{failed}, [], '... not one failed') or diag(explain($res->{by_status}));
diag("HUP under load: $res->{total} requests, " . scalar(@{ $res->{failed} }) . ' failed, slowest '
	. sprintf('%.3f s', $res->{max_seconds}));

my $r = cancel_ids(3);
is($r->{status}, 413, 'the new max_resources (2) is in effect') or diag($r->{body});
is($r->{json}{error}{code}, 'payload_too_large', '... payload_too_large');
is(cancel_ids(2)->{status}, 200, '... 2 ids pass');
is((stat $sock)[1], $inode, 'the listening socket was never replaced');

# Fixed again: the next reload works.
$t->write_conf(conf => { workers => 2, max_resources => 5 });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->log =~ /reload: generation 2, 2 workers/ }, timeout => 10), 'a good file loads again');
ok($t->wait_until(sub { !grep { !CallstopTest::_gone($_) } @gen1 }, timeout => 15), '... generation 1 drained');
is(scalar(() = $t->worker_pids), 3, '... two workers and the retry child');
is(cancel_ids(3)->{status}, 200, '... max_resources 5 again');

# A reload that changes a key read at start only keeps the running value.
$t->write_conf(conf => { listen_backlog => 7 });
kill 'HUP', $t->callstopd_pid;
ok($t->wait_until(sub { $t->log =~ /reload: listen_backlog changed, which needs a restart; keeping the running value/ },
	timeout => 10), 'a restart-only key is kept, with a warning');

done_testing();
