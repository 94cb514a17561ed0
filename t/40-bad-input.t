#!/usr/bin/perl
# The error table of SPEC 3, row by row: status, code, body shape (with the
# request id), and nothing changed in the database.

use v5.36;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use CallstopTest;
use Fixtures qw(:all);

my $t = CallstopTest->new(workers => 2);
my $tid = $t->tenant('acme');
my $key = $t->key(tenant => 'acme', frontend_id => 'fe1');
my $T = JSON::PP::true;
my $JSON = JSON::PP->new->utf8->canonical;

# Live resources: a request wrongly processed would change them.
my $call = fx_call($t, $tid, status => 'running', livekit_room => 'room-1');
my $call2 = fx_call($t, $tid, status => 'ringing');
my $call3 = fx_call($t, $tid, status => 'connecting');
my $batch = fx_batch($t, $tid, 'batch-live', 5);

sub post_raw ($body, $ct = 'application/json', $path = '/calls/cancel') {
	return $t->api(POST => $path, key => $key, frontend => 'fe1', body => $body,
		defined $ct ? (content_type => $ct) : ());
}

sub post_json ($ref) { return post_raw($JSON->encode($ref)) }

# Every bad request of a subtest leaves the database as it was.
sub unchanged ($name, $code) {
	subtest $name => sub {
		my $before = fx_snapshot($t);
		$code->();
		is_deeply(fx_snapshot($t), $before, 'nothing changed in the database');
	};
}

unchanged '400 invalid_json: the body does not parse' => sub {
	for my $body ('{"resource_id": ', 'nope', qq({"resource_id": "$call"} trailing), qq({"resource_id": "$call",}),
		qq({'resource_id': '$call'}), qq({"resource_id": "$call"}{"force": true}), "\x{ff}\x{fe}{}", '')
	{
		(my $name = $body) =~ s/[^\x20-\x7e]/?/g;
		is_unified_error(post_raw($body), 400, 'invalid_json', "body: '$name'");
	}
};

unchanged '400 invalid_json: nesting deeper than 16 levels; 16 is fine' => sub {
	# Top-level object (level 1) plus N nested arrays, the innermost empty.
	my $nest = sub ($levels) { '[' x ($levels - 1) . ']' x ($levels - 1) };
	is_unified_error(post_raw(qq({"resource_id": "$call", "x": ) . $nest->(17) . '}'), 400, 'invalid_json',
		'17 levels (in an unknown field)');
	is_unified_error(post_raw(qq({"resource_id": ) . ('[' x 16) . qq("$call") . (']' x 16) . '}'), 400,
		'invalid_json', '17 levels (in resource_id)');
	is_unified_error(post_raw(('[' x 17) . (']' x 17)), 400, 'invalid_json', '17 nested arrays');
	is_unified_error(post_raw(('[' x 1000) . (']' x 1000)), 400, 'invalid_json', '1000 nested arrays');
	my $ok = post_raw(qq({"resource_id": "batch-none", "x": ) . $nest->(16) . '}');
	is($ok->{status}, 200, '16 levels: accepted') or diag($ok->{body});
	is_deeply($ok->{json}{results}, [ { resource_id => 'batch-none', resource_type => 'batch', status => 'not_found',
		cancelled_count => 0, message => 'Batch not found' } ], '... and processed');
};

unchanged '400 invalid_request: not an object' => sub {
	for my $body ('[]', qq(["$call"]), qq("$call"), '42', 'null', 'true') {
		is_unified_error(post_raw($body), 400, 'invalid_request', "body $body");
	}
};

unchanged '400 invalid_request: resource_id missing' => sub {
	is_unified_error(post_json({}), 400, 'invalid_request', '{}');
	is_unified_error(post_json({ force => $T }), 400, 'invalid_request', '{"force": true}');
	is_unified_error(post_json({ resource_ids => [$call] }), 400, 'invalid_request', 'resource_ids (misspelt)');
	is_unified_error(post_json({ Resource_Id => $call }), 400, 'invalid_request', 'Resource_Id (other case)');
};

unchanged '400 invalid_request: resource_id not a string or list of strings' => sub {
	is_unified_error(post_raw('{"resource_id": 42}'), 400, 'invalid_request', 'a number');
	is_unified_error(post_raw('{"resource_id": null}'), 400, 'invalid_request', 'null');
	is_unified_error(post_raw('{"resource_id": true}'), 400, 'invalid_request', 'true');
	is_unified_error(post_json({ resource_id => { id => $call } }), 400, 'invalid_request', 'an object');
	is_unified_error(post_json({ resource_id => [ $call, 1 ] }), 400, 'invalid_request', 'a list with a number');
	is_unified_error(post_json({ resource_id => [ $call, undef ] }), 400, 'invalid_request', 'a list with null');
	is_unified_error(post_json({ resource_id => [ $call, [$call2] ] }), 400, 'invalid_request', 'a list with a list');
	is_unified_error(post_json({ resource_id => [ { id => $call } ] }), 400, 'invalid_request',
		'a list with an object');
};

unchanged '400 invalid_request: empty string, empty list' => sub {
	is_unified_error(post_json({ resource_id => '' }), 400, 'invalid_request', 'empty string');
	is_unified_error(post_json({ resource_id => [] }), 400, 'invalid_request', 'empty list');
	is_unified_error(post_json({ resource_id => [ $call, '' ] }), 400, 'invalid_request', 'a list with ""');
};

unchanged '400 invalid_request: an id over 128 bytes' => sub {
	is_unified_error(post_json({ resource_id => 'a' x 129 }), 400, 'invalid_request', '129 bytes');
	is_unified_error(post_json({ resource_id => 'batch-' . ('a' x 123) }), 400, 'invalid_request',
		'batch- + 123 = 129 bytes');
	is_unified_error(post_json({ resource_id => [ $call, 'x' x 1000 ] }), 400, 'invalid_request',
		'in a list, after a good id');
	is_unified_error(post_json({ resource_id => "\x{20ac}" x 43 }), 400, 'invalid_request',
		'43 characters, 129 bytes of UTF-8');
	for my $id ('a' x 128, 'batch-' . ('b' x 122), "\x{20ac}" x 42) {
		my $r = post_json({ resource_id => $id });
		is($r->{status}, 200, length($id) . ' characters, <= 128 bytes: accepted') or diag($r->{body});
		is($r->{json}{resource_id}, $id, '... echoed');
		is($r->{json}{status}, 'not_found', '... not found');
	}
};

unchanged '400 invalid_request: force not a boolean' => sub {
	for my $force ('"true"', '1', '0', 'null', '"false"', '[]', '{}') {
		is_unified_error(post_raw(qq({"resource_id": "$call", "force": $force})), 400, 'invalid_request',
			"force: $force");
	}
};

unchanged '413 payload_too_large: more ids than max_resources' => sub {
	my @ids = (($call, $call2, 'batch-live'), map { fx_uuid() } 1 .. 98);
	is(scalar @ids, 101, '101 ids');
	is_unified_error(post_json({ resource_id => \@ids }), 413, 'payload_too_large', '101 distinct ids');
	is_unified_error(post_json({ resource_id => [ ($call) x 101 ] }), 413, 'payload_too_large',
		'101 ids as sent, one distinct');
	is_unified_error(post_json({ resource_id => [ map { fx_uuid() } 1 .. 1000 ] }), 413, 'payload_too_large',
		'1000 ids');
};

unchanged '413 payload_too_large: body over 64 KiB, from nginx' => sub {
	my $big = $JSON->encode({ resource_id => [$call], force => $T, pad => 'x' x (65 * 1024) });
	my $before = () = $t->log =~ / req=/g;
	my $r = post_raw($big);
	is_unified_error($r, 413, 'payload_too_large', '65 KiB');
	is_unified_error(post_raw($JSON->encode({ resource_id => $call, pad => 'y' x (1024 * 1024) })), 413,
		'payload_too_large', '1 MiB');
	my $after = () = $t->log =~ / req=/g;
	is($after, $before, 'callstopd never saw them');
	my $ok = post_raw($JSON->encode({ resource_id => 'batch-none', pad => 'z' x (60 * 1024) }));
	is($ok->{status}, 200, '60 KiB: accepted') or diag($ok->{body});
	# The limit itself: 64 KiB is not over it, one byte more is.
	my $frame = $JSON->encode({ resource_id => 'batch-none', pad => '' });
	my $exact = $JSON->encode({ resource_id => 'batch-none', pad => 'p' x (65536 - length $frame) });
	is(length $exact, 65536, 'a body of exactly 64 KiB');
	$ok = post_raw($exact);
	is($ok->{status}, 200, '... is accepted') or diag($ok->{body});
	is_unified_error(post_raw($JSON->encode({ resource_id => $call, pad => 'p' x (65537 - length $frame) })), 413,
		'payload_too_large', '64 KiB + 1 byte');
};

unchanged '415 unsupported_media_type' => sub {
	my $body = qq({"resource_id": "$call"});
	is_unified_error(post_raw($body, 'text/plain'), 415, 'unsupported_media_type', 'text/plain');
	is_unified_error(post_raw($body, 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type', 'form');
	is_unified_error(post_raw($body, 'application/jsonx'), 415, 'unsupported_media_type', 'application/jsonx');
	is_unified_error(post_raw($body, 'text/json'), 415, 'unsupported_media_type', 'text/json');
	is_unified_error(post_raw($body, undef), 415, 'unsupported_media_type', 'no Content-Type');
	is_unified_error(post_raw('{"force": true}', undef, '/batch/batch-cancel/batch-live'), 415,
		'unsupported_media_type', 'batch-cancel: a body without Content-Type');
};

subtest 'Content-Type parameters are fine' => sub {
	my $r = post_raw(qq({"resource_id": "$call2"}), 'application/json; charset=utf-8');
	is($r->{status}, 200, 'application/json; charset=utf-8') or diag($r->{body});
	is($r->{json}{status}, 'cancelled', '... processed');
	$r = post_raw(qq({"resource_id": ["batch-none"]}), 'application/json;charset=UTF-8');
	is($r->{status}, 200, 'application/json;charset=UTF-8') or diag($r->{body});
};

unchanged '404 not_found: unknown route' => sub {
	for my $req ([ GET => '/' ], [ GET => '/nope' ], [ POST => '/calls/cancel/extra' ], [ POST => '/calls' ],
		[ GET => '/calls/status/' ], [ GET => "/calls/status/$call/extra" ], [ POST => '/batch/batch-cancel/' ],
		[ POST => '/calls/cancels' ], [ GET => '/CALLS/STATUS/x' ])
	{
		my ($method, $path) = @$req;
		my $r = $t->api($method, $path, key => $key, frontend => 'fe1',
			$method eq 'POST' ? (json => { resource_id => $call }) : ());
		is_unified_error($r, 404, 'not_found', "$method $path");
	}
};

unchanged '405 method_not_allowed, with Allow' => sub {
	for my $req ([ GET => '/calls/cancel', 'POST' ], [ PUT => '/calls/cancel', 'POST' ],
		[ DELETE => '/calls/cancel', 'POST' ], [ POST => "/calls/status/$call", 'GET' ],
		[ DELETE => "/calls/status/$call", 'GET' ], [ GET => '/batch/batch-cancel/batch-live', 'POST' ],
		[ PATCH => '/batch/batch-cancel/batch-live', 'POST' ])
	{
		my ($method, $path, $allow) = @$req;
		my $r = $t->api($method, $path, key => $key, frontend => 'fe1',
			$method =~ /^(?:PUT|PATCH|POST)$/ ? (json => { resource_id => $call }) : ());
		is_unified_error($r, 405, 'method_not_allowed', "$method $path");
		my @allowed = sort grep { length } split /\s*,\s*/, $r->{headers}{allow} // '';
		is_deeply(\@allowed, [$allow], "$method $path: Allow: $allow");
	}
};

# JSON text is UTF-8 (RFC 8259 8.1): a string with bytes that are not UTF-8
# does not parse.  Nor is an id that is not UTF-8 in a path a database
# failure: that resource does not exist.
unchanged '400 invalid_json: a string that is not UTF-8; a path id that is not UTF-8 is not found' => sub {
	is_unified_error(post_raw(qq({"resource_id": ["\xff\xfe", "$call"]})), 400, 'invalid_json',
		'bytes ff fe in an id of a list');
	is_unified_error(post_raw(qq({"resource_id": "batch-\xc3"})), 400, 'invalid_json', 'a truncated UTF-8 sequence');
	is_unified_error(post_raw(qq({"resource_id": "$call3", "note": "\xff"})), 400, 'invalid_json',
		'in an unknown field');
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call3'"), 'connecting',
		'... the call named was not cancelled');
	is_unified_error($t->api(GET => '/calls/status/batch-%FF', key => $key, frontend => 'fe1'), 404, 'not_found',
		'GET /calls/status/batch-%FF');
	is_unified_error($t->api(GET => '/calls/status/%FF%FE', key => $key, frontend => 'fe1'), 404, 'not_found',
		'GET /calls/status/%FF%FE');
	is_unified_error($t->api(POST => '/batch/batch-cancel/batch-%FF', key => $key, frontend => 'fe1'), 404,
		'not_found', 'POST /batch/batch-cancel/batch-%FF');
};

# Issue 10, defect 10: cJSON read an invalid \u escape as U+0000 and copied
# raw control bytes, and the id was then measured with strlen(): each of these
# answered 200 and cancelled the call named before the malformation.
unchanged '400 invalid_json: a malformed escape or a raw control byte after a live id' => sub {
	for my $body (qq({"resource_id":"$call\\uZZZZ-anything"}), qq({"resource_id":["$call\\u-XYZ","x"]}),
		qq({"resource_id":"$call\x00"}), qq({"resource_id":["$call\x00junk"]}), qq({"resource_id":"$call\\u12"}),
		qq({"resource_id":"$call\\u0000"}), qq({"resource_id":"$call\x01"}), qq({"resource_id":"$call\x1f"}),
		qq({"resource_id":"$call\n"}), qq({"resource_id":"$call\\x41"}), qq({"resource_id":"$call\\ud800"}))
	{
		(my $name = $body) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
		is_unified_error(post_raw($body), 400, 'invalid_json', "body: $name");
	}
	is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'running',
		'... the call named before the malformation was not cancelled');
};

# Defect 11: text that is not JSON (RFC 8259) is refused, not guessed at.
unchanged '400 invalid_json: control bytes as whitespace, numbers RFC 8259 does not allow' => sub {
	for my $body (qq(\x01{"resource_id":"$call"}), qq({"resource_id":\x0b"$call"}), qq({"resource_id":"$call"}\x0c),
		qq({\x00"resource_id":"$call"}), qq({"resource_id":"$call"}\x00), qq({"resource_id":"$call","n":01}),
		qq({"resource_id":"$call","n":1.}), qq({"resource_id":"$call","n":-.5}), qq({"resource_id":"$call","n":+1}),
		qq({"resource_id":"$call","n":1e}), qq({"resource_id":"$call","n":0x10}))
	{
		(my $name = $body) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
		is_unified_error(post_raw($body), 400, 'invalid_json', "body: $name");
	}
};

# Defect 11: a repeated key meant the first one to cJSON, the last one to
# JavaScript and Python; it means nothing now.
unchanged '400 invalid_request: a key repeated in an object' => sub {
	is_unified_error(post_raw(qq({"resource_id":"batch-none","resource_id":"$call"})), 400, 'invalid_request',
		'resource_id twice');
	is_unified_error(post_raw(qq({"resource_id":"$call","resource_id":1})), 400, 'invalid_request',
		'resource_id twice, the second not a string');
	is_unified_error(post_raw(qq({"resource_id":"$call","\\u0072esource_id":"x"})), 400, 'invalid_request',
		'resource_id twice, once escaped');
	is_unified_error(post_raw(qq({"resource_id":"$call","force":false,"force":true})), 400, 'invalid_request',
		'force twice');
	is_unified_error(post_raw(qq({"resource_id":"$call","x":{"a":1,"a":2}})), 400, 'invalid_request',
		'a nested object');
	is_unified_error(post_raw('{"force":true,"force":false}', 'application/json', '/batch/batch-cancel/batch-live'),
		400, 'invalid_request', 'batch-cancel: force twice');
	is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$batch'"), 'pending',
		'... the batch is still pending');
};

# SPEC 2: errors that nginx answers itself use the same body shape as
# callstopd (for a unified path: the unified error body).
unchanged 'errors nginx answers itself: the unified body' => sub {
	my $r = $t->api(TRACE => '/calls/cancel', key => $key, frontend => 'fe1');
	is_unified_error($r, 405, 'method_not_allowed', 'TRACE /calls/cancel');
	is($r->{headers}{allow}, 'POST', '... Allow: POST');
	my $code_ok = sub ($r, $status, $name) {
		subtest $name => sub {
			is($r->{status}, $status, "status $status");
			like($r->{headers}{'content-type'} // '', qr{^application/json\b}, 'JSON content type')
				or diag($r->{body});
			my $j = $r->{json} // {};
			is_deeply([ sort keys %$j ], [qw(error request_id)], 'top-level fields: error, request_id');
			is_deeply([ sort keys %{ ref $j->{error} eq 'HASH' ? $j->{error} : {} } ], [qw(code message)],
				'error fields: code, message');
			like($j->{error}{code} // '', qr/^[a-z]+(?:_[a-z]+)*$/, 'a snake_case code');
			is($j->{request_id}, $r->{headers}{'x-request-id'}, 'request_id is the X-Request-Id');
		};
	};
	$code_ok->($t->api(GET => '/calls/status/batch-' . ('x' x 9000), key => $key, frontend => 'fe1'), 414,
		'a 9000-byte URI: 414');
	$code_ok->($t->api(GET => '/calls/status/batch-x', key => $key, frontend => 'fe1',
		headers => { 'X-Padding' => 'y' x 9000 }), 400, 'a 9000-byte header: 400');
	$code_ok->($t->api(GET => '/calls/status/batch-%00x', key => $key, frontend => 'fe1'), 400,
		'an encoded NUL in the path: 400');
	$code_ok->($t->api(GET => '/../calls/status/x', key => $key, frontend => 'fe1'), 400,
		'a path above the root: 400');
};

is($t->psql_value("SELECT status FROM voice_call_logs WHERE id = '$call'"), 'running', 'the live call still runs');
is($t->psql_value("SELECT status FROM voice_call_batches WHERE id = '$batch'"), 'pending', 'the live batch is pending');

done_testing();
