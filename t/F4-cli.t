#!/usr/bin/perl
# The CLI for the people who script it (issue 16): callstopctl --json prints
# the rows of each list command as one JSON array of objects; the bash
# completions of callstopctl and callstopd offer the commands, subcommands
# and options their --help lists (run under stubs of bash-completion's
# helpers, so that the package need not be installed).

use v5.36;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;

my $t = CallstopTest->new(callstopd_off => 1, nginx_off => 1);
my $acme = $t->tenant('acme', workspace_id => 'ws_acme');
$t->key(tenant => 'acme', frontend_id => 'fe1');
$t->admin_token;

for my $list ([qw(tenant list)], [qw(key list)], [qw(admin-token list)], [qw(outbox list)]) {
	my ($rc, $out, $err) = $t->ctl('--json', @$list);
	is($rc, 0, "--json @$list: exit 0") or diag($err);
	my $rows = eval { JSON::PP->new->decode($out) };
	is(ref $rows, 'ARRAY', '... one JSON array') or diag($out);
	my ($plain) = ($t->ctl(@$list))[1];
	my @lines = split /\n/, $plain;
	is(scalar @{ $rows // [] }, @lines - 1, '... one object per row of the table');
}
my ($rc, $out) = $t->ctl('--json', 'tenant', 'list');
my ($row) = @{ decode_json($out) };
is($row->{id}, $acme, 'tenant list --json: id');
is($row->{name}, 'acme', '... name');
is($row->{workspace_id}, 'ws_acme', '... workspace_id');
is($row->{keys}, 1, '... keys');
like($out, qr/"id":\d+,/, '... unquoted');

# ---- bash completion -------------------------------------------------------------
my $dir = "$FindBin::Bin/../completion";
sub complete ($prog, @words) {
	my $script = <<"EOS";
_init_completion() { cur=\${COMP_WORDS[COMP_CWORD]}; prev=\${COMP_WORDS[COMP_CWORD-1]}; words=("\${COMP_WORDS[@]}"); cword=\$COMP_CWORD; }
_filedir() { COMPREPLY=(FILES); }
complete() { :; }
source '$dir/$prog'
COMP_WORDS=($prog @{[ map { "'$_'" } @words ]}); COMP_CWORD=${\ scalar @words}
_$prog
printf '%s\\n' "\${COMPREPLY[\@]}" | sort | tr '\\n' ' '
EOS
	open(my $fh, '-|', 'bash', '-c', $script) or die "bash: $!";
	my $got = do { local $/; <$fh> };
	close $fh;
	$got =~ s/\s+$//;
	return $got;
}

# What `callstopctl --help` lists: each command, its subcommands, the options
# of each (an option list may go on in a line of its own: "    [--x N]"), and
# the values of each --state.
my ($hrc, $help) = $t->ctl('--help');
my ($commands) = $help =~ /^Commands:\n(.*)\z/ms;
my (%sub, %opt, %state, $cur);
for my $line (split /\n/, $commands // '') {
	if ($line =~ /^  ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(.*)$/) {
		$cur = join ' ', grep { defined } $1, $2;
		$sub{$1}{ $2 // '' } = 1;
	} elsif ($line !~ /^\s+\[/) {
		undef $cur;    # a description
		next;
	}
	next unless defined $cur;
	$opt{$cur}{$1} = 1 while $line =~ /(--[a-z-]+)/g;
	$state{$cur} = join ' ', sort split /\|/, $1 if $line =~ /--state ([a-z|]+)/;
}
my @cmds = sort keys %sub;
ok(@cmds >= 7, "callstopctl --help lists its commands: @cmds");
is(complete('callstopctl', ''), "@cmds", 'callstopctl <TAB>: the commands');
is(complete('callstopctl', 'ou'), 'outbox', 'callstopctl ou<TAB>');
is(complete('callstopctl', '-c', 'x.conf', 'key', ''), 'create list revoke', '... after -c FILE: key subcommands');
is(complete('callstopctl', 'key', 'create', '--'), '--frontend-id --tenant', 'key create --<TAB>');
is(complete('callstopctl', 'outbox', 'list', '--state', ''), $state{'outbox list'}, 'outbox list --state <TAB>');
for my $c (@cmds) {
	my @subs = sort grep { length } keys %{ $sub{$c} };
	is(complete('callstopctl', $c, ''), "@subs", "$c <TAB>: @subs") if @subs;
	for my $s (@subs ? @subs : ('')) {
		my $k = join ' ', grep { length } $c, $s;
		my @o = sort keys %{ $opt{$k} // {} };
		is(complete('callstopctl', split(/ /, $k), '--'), "@o", "$k --<TAB>: the options --help lists");
		is(complete('callstopctl', split(/ /, $k), '--state', ''), $state{$k}, "$k --state <TAB>: $state{$k}")
			if $state{$k};
	}
}
is(complete('callstopctl', '--j'), '--json', 'global --j<TAB>');
is(complete('callstopctl', '-c', ''), 'FILES', '-c <TAB>: files');
is(complete('callstopd', '--'), '--config --help --test --test-connect --version', 'callstopd --<TAB>');
is(complete('callstopd', '-c', ''), 'FILES', 'callstopd -c <TAB>: files');

done_testing;
