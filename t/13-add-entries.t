#!/usr/bin/perl
# Appending entries to a running campaign (sql/002_dialer.sql,
# callstop_add_entries): allowed while the batch is active, counted in its
# counters (invariant 3), refused once a cancel has returned (invariant 2:
# nothing new is queued in a cancelled batch), and the refusal changes nothing.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 1);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $b = fx_batch($t, $tid, 'batch-append', 3);

my $add = sub (@numbers) {
	my $list = join(',', map { "'$_'" } @numbers);
	return $t->psql_value("SELECT callstop_add_entries('$b', ARRAY[$list]::text[])");
};

is($add->('+15550100001', '+15550100002'), 2, 'two entries appended to a pending batch');
is(fx_counters($t, $b)->{total}, 5, 'total counter 3 + 2');
is(fx_counters($t, $b)->{pending}, 5, 'pending counter 3 + 2');
fx_counters_ok($t, $b, 'counters equal the entries after the append');

my $r = $t->api(POST => '/calls/cancel', key => $key, frontend => 'fe1', json => { resource_id => 'batch-append' });
is($r->{status}, 200, 'batch cancelled') or diag($r->{body});
is($r->{json}{cancelled_count}, 5, 'the appended entries were cancelled with the rest');

my $before = fx_snapshot($t);
my $err = eval { $add->('+15550100003'); 1 } ? '' : $@;
like($err, qr/batch \S+ is cancelled, not active/, 'appending to a cancelled batch is refused');
is_deeply(fx_snapshot($t), $before, 'the refused append changed nothing');
fx_counters_ok($t, $b, 'counters still equal the entries');

my $none = eval { $t->psql_value("SELECT callstop_add_entries('00000000-0000-0000-0000-000000000000', ARRAY['+1']::text[])"); 1 }
	? '' : $@;
like($none, qr/no batch/, 'an unknown batch is an error');

done_testing;
