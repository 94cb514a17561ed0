package Fixtures;

=head1 NAME

Fixtures - test data and common assertions for the end-to-end tests

=head1 SYNOPSIS

    use Fixtures qw(:all);

    my $call  = fx_call($t, $tenant_id, status => 'running', livekit_room => 'room-1');
    my $batch = fx_batch($t, $tenant_id, 'batch-7', 10);            # uuid
    my @ids   = fx_claim($t, $batch, 'd1', 3);                       # entry ids
    my $c     = fx_start($t, $ids[0], 'd1', room => 'room-x');       # call uuid
    fx_report($t, $c, 'running');

    my $before = fx_snapshot($t);
    ... a request that must not change anything ...
    is_deeply(fx_snapshot($t), $before, 'nothing changed');

    fx_counters_ok($t, $batch, 'counters equal entry counts');
    is_unified_error($r, 404, 'not_found', 'unknown route');

=head1 DESCRIPTION

Rows are inserted the way the platform and the dialers do: calls and batches
by INSERT, entries set-based with generate_series, claims and starts through
the dialer functions of F<sql/002_dialer.sql>.

=cut

use v5.36;

use Exporter 'import';
use B ();
use JSON::PP ();
use Test::More ();

our @EXPORT_OK = qw(
	fx_call fx_batch fx_claim fx_start fx_report fx_snapshot fx_counters_ok fx_counters
	fx_history fx_history_count fx_outbox fx_row fx_entry_counts fx_uuid fx_kill_backend fx_kill_backend_off
	is_unified_error is_rfc3339_utc fx_types
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

sub _q ($s) {
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

# A random lower-case UUID (v4 shape) that no row has.
sub fx_uuid () {
	my @h = map { sprintf '%04x', int rand 65536 } 1 .. 8;
	return "$h[0]$h[1]-$h[2]-4" . substr($h[3], 1) . '-a' . substr($h[4], 1) . "-$h[5]$h[6]$h[7]";
}

# Insert a call; returns its id.  Options: status (initiated), livekit_room,
# openai_call_id, agent_id, to_number, batch_id, batch_entry_id, started,
# ended (set started_at / ended_at + end_reason).
sub fx_call ($t, $tenant_id, %o) {
	my $status = $o{status} // 'initiated';
	my $terminal = $status !~ /^(?:initiated|connecting|ringing|running)$/;
	my $ended = $o{ended} // $terminal;
	return $t->psql_value(sprintf(<<~'SQL',
		INSERT INTO voice_call_logs (tenant_id, batch_id, batch_entry_id, agent_id, to_number, status,
		                             livekit_room, openai_call_id, started_at, ended_at, end_reason)
		VALUES (%d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
		SQL
		$tenant_id, _q($o{batch_id}), $o{batch_entry_id} // 'NULL', _q($o{agent_id} // 'agent-1'),
		_q($o{to_number} // '+15550001111'), _q($status), _q($o{livekit_room}), _q($o{openai_call_id}),
		($o{started} // $status eq 'running') ? q{now() - interval '1 minute'} : 'NULL',
		$ended ? 'now()' : 'NULL', $ended ? _q($status) : 'NULL'));
}

# Insert a batch with $n pending entries (set-based); returns its uuid.
sub fx_batch ($t, $tenant_id, $job_id, $n, %o) {
	my $status = $o{status} // 'pending';
	my $id = $t->psql_value(sprintf(
		'INSERT INTO voice_call_batches (tenant_id, job_id, status, cancelled_at) VALUES (%d, %s, %s, %s)'
		. ' RETURNING id',
		$tenant_id, _q($job_id), _q($status), $status =~ /^(?:cancelled|stopped)$/ ? 'now()' : 'NULL'));
	$t->psql(sprintf(q{INSERT INTO voice_call_batch_entries (batch_id, to_number)
		SELECT '%s', '+1555' || lpad(g::text, 7, '0') FROM generate_series(1, %d) g}, $id, $n))
		if $n > 0;
	return $id;
}

# Claim up to $n entries for $worker through the dialer function; entry ids.
sub fx_claim ($t, $batch, $worker, $n) {
	my $rows = $t->psql(sprintf('SELECT entry_id FROM callstop_claim_entries(%s, %s, %d) ORDER BY 1',
		_q($batch), _q($worker), $n));
	return map { $_->[0] } @$rows;
}

# Start the call of a claimed entry; its call id (undef when refused).
sub fx_start ($t, $entry, $worker, %o) {
	my $v = $t->psql_value(sprintf('SELECT callstop_start_call(%d, %s, %s, %s, %s)', $entry, _q($worker),
		_q($o{agent} // 'agent-1'), _q($o{room}), _q($o{openai})));
	return defined $v && length $v ? $v : undef;
}

sub fx_report ($t, $call, $status) {
	return $t->psql_value(sprintf('SELECT callstop_report_call(%s, %s)', _q($call), _q($status)));
}

# A digest of every table a request could change: {table => [rows, md5]};
# with tenant => ID only that tenant's rows; except => [tables] leaves out
# tables the test itself changes (a key it revokes).
sub fx_snapshot ($t, %o) {
	my %where = (
		tenants                  => 'x.id = %d',
		api_keys                 => 'x.tenant_id = %d',
		voice_call_batches       => 'x.tenant_id = %d',
		voice_call_batch_entries => 'x.batch_id IN (SELECT id FROM voice_call_batches WHERE tenant_id = %d)',
		voice_call_logs          => 'x.tenant_id = %d',
		cancel_history           => 'x.tenant_id = %d',
		termination_outbox       => 'x.tenant_id = %d',
	);
	# The outbox by which rows exist, not their retry progress: the retry
	# child updates attempts and next_attempt_at by itself.
	my %from = (termination_outbox => '(SELECT id, tenant_id, call_id, provider, target, idempotency_key,'
		. ' created_at FROM termination_outbox)');
	my %snap;
	delete @where{ @{ $o{except} // [] } };
	for my $table (sort keys %where) {
		my $w = defined $o{tenant} ? 'WHERE ' . sprintf($where{$table}, $o{tenant}) : '';
		$snap{$table} = $t->psql(sprintf(q{SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.id::text), ''))
			FROM %s x %s}, $from{$table} // $table, $w))->[0];
	}
	return \%snap;
}

# One row as a hash (columns named), or undef.
sub fx_row ($t, $sql) {
	my $rows = $t->psql("SELECT row_to_json(x)::text FROM ($sql) x");
	return undef unless @$rows;
	return JSON::PP->new->decode($rows->[0][0]);
}

# Counters of a batch and the counts of its entries.
sub fx_counters ($t, $batch) {
	my $c = fx_row($t, sprintf(q{SELECT total_count AS total, pending_count AS pending, claimed_count AS claimed,
		running_count AS running, completed_count AS completed, failed_count AS failed,
		cancelled_count AS cancelled FROM voice_call_batches WHERE id = '%s'}, $batch));
	return $c;
}

sub fx_entry_counts ($t, $batch) {
	return fx_row($t, sprintf(q{SELECT count(*) AS total,
		count(*) FILTER (WHERE status = 'pending') AS pending,
		count(*) FILTER (WHERE status = 'claimed') AS claimed,
		count(*) FILTER (WHERE status = 'running') AS running,
		count(*) FILTER (WHERE status = 'completed') AS completed,
		count(*) FILTER (WHERE status = 'failed') AS failed,
		count(*) FILTER (WHERE status = 'cancelled') AS cancelled
		FROM voice_call_batch_entries WHERE batch_id = '%s'}, $batch));
}

# Invariant 3: the batch's counters equal the counts of its entries.
sub fx_counters_ok ($t, $batch, $name) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return Test::More::is_deeply(fx_counters($t, $batch), fx_entry_counts($t, $batch), $name);
}

# cancel_history rows (hashes), optionally of one call or batch.
sub fx_history ($t, %o) {
	my $where = defined $o{call} ? sprintf(q{WHERE call_id = '%s'}, $o{call})
		: defined $o{batch} ? sprintf(q{WHERE batch_id = '%s'}, $o{batch}) : '';
	my $rows = $t->psql("SELECT row_to_json(h)::text FROM cancel_history h $where ORDER BY id");
	return [ map { JSON::PP->new->decode($_->[0]) } @$rows ];
}

sub fx_history_count ($t) {
	return $t->psql_value('SELECT count(*) FROM cancel_history') + 0;
}

# termination_outbox rows of a call, in id order.
sub fx_outbox ($t, $call) {
	my $rows = $t->psql(sprintf(q{SELECT row_to_json(o)::text FROM (SELECT provider, target, state, last_error
		FROM termination_outbox WHERE call_id = '%s' ORDER BY id) o}, $call));
	return [ map { JSON::PP->new->decode($_->[0]) } @$rows ];
}

# A connection lost inside a cancel's transaction: the backend that writes
# the history row of $call terminates itself (every time, or with once => 1
# only the first time), after what the transaction did before.
# fx_kill_backend_off($t) removes it.
sub fx_kill_backend ($t, $call, %o) {
	# (nextval() asked only for that row: an AND could ask it for any)
	my $once = $o{once} ? q{IF nextval('test_kill_once') > 1 THEN RETURN NEW; END IF;} : '';
	$t->psql(($o{once} ? 'CREATE SEQUENCE test_kill_once;' : '') . qq{
		CREATE FUNCTION test_kill_backend() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
			IF NEW.call_id = '$call' THEN
				$once
				PERFORM pg_terminate_backend(pg_backend_pid());
				PERFORM pg_sleep(1);
			END IF;
			RETURN NEW;
		END \$\$;
		CREATE TRIGGER test_kill_backend BEFORE INSERT ON cancel_history
			FOR EACH ROW EXECUTE FUNCTION test_kill_backend();
	});
	return;
}

sub fx_kill_backend_off ($t) {
	$t->psql('DROP TRIGGER test_kill_backend ON cancel_history; DROP FUNCTION test_kill_backend();'
		. ' DROP SEQUENCE IF EXISTS test_kill_once');
	return;
}

# A unified error answer (SPEC 3): status, JSON content type, exactly
# {"error": {"code", "message"}, "request_id"} with the X-Request-Id.
sub is_unified_error ($r, $status, $code, $name, %o) {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return Test::More::subtest($name => sub {
		Test::More::is($r->{status}, $status, "status $status") or Test::More::diag($r->{body});
		Test::More::like($r->{headers}{'content-type'} // '', qr{^application/json\b}, 'JSON content type');
		my $j = $r->{json};
		Test::More::is(ref $j, 'HASH', 'JSON object body') or return;
		Test::More::is_deeply([ sort keys %$j ], [qw(error request_id)], 'top-level fields: error, request_id');
		Test::More::is(ref $j->{error}, 'HASH', 'error is an object') or return;
		Test::More::is_deeply([ sort keys %{ $j->{error} } ], [qw(code message)], 'error fields: code, message');
		Test::More::is($j->{error}{code}, $code, "code $code");
		if (defined $o{message}) {
			Test::More::is($j->{error}{message}, $o{message}, 'message');
		} else {
			Test::More::ok(defined $j->{error}{message} && !ref $j->{error}{message}
				&& length $j->{error}{message}, 'message is a non-empty string');
		}
		Test::More::like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, 'X-Request-Id header');
		Test::More::is($j->{request_id}, $r->{headers}{'x-request-id'}, 'request_id is the X-Request-Id');
	});
}

# The JSON types of a body, as the same structure with every scalar replaced
# by 'string', 'number', 'boolean' or 'null' (decoded afresh: a value that was
# compared as a string would look like one).
sub fx_types ($body) {
	my $walk;
	$walk = sub ($v) {
		return 'null' unless defined $v;
		return 'boolean' if JSON::PP::is_bool($v);
		return [ map { $walk->($_) } @$v ] if ref $v eq 'ARRAY';
		return { map { $_ => $walk->($v->{$_}) } keys %$v } if ref $v eq 'HASH';
		my $flags = B::svref_2object(\$v)->FLAGS;
		return ($flags & (B::SVp_IOK | B::SVp_NOK)) && !($flags & B::SVp_POK) ? 'number' : 'string';
	};
	my $doc = eval { JSON::PP->new->utf8->decode($body) };
	return defined $doc ? $walk->($doc) : undef;
}

# RFC 3339 in UTC ("Z" or "+00:00"); undef is not.
sub is_rfc3339_utc ($v) {
	return defined $v && !ref $v
		&& $v =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)$/ ? 1 : 0;
}

1;
