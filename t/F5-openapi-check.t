#!/usr/bin/perl
# The check of every end-to-end answer against doc/openapi.yaml
# (t/lib/OpenAPICheck.pm, issue 16) catches what it is there to catch: a body
# that is not the documented shape, a status the operation does not document,
# a method and path the document does not have; and lets through what the
# document promises for paths it does not list (404 and 405 in the family's
# error body).  No server: the answers are made up here, in the shapes
# CallstopTest::request returns.
use v5.36;
use Test::More;
use JSON::PP ();
use OpenAPICheck;

eval { require JSON::Validator::Schema::OpenAPIv3; 1 }
	or plan skip_all => 'JSON::Validator missing (Debian: libjson-validator-perl)';

my $RID = '9f1c0e6a2b7d4c3e8f5a6b7c8d9e0f1a';
my $UUID = '0b7c2c0e-3d6a-4f55-9b1e-2f0c8d7a6b51';

sub answer ($status, $json, %h) {
	return {
		status  => $status,
		headers => { 'x-request-id' => $RID, 'content-type' => 'application/json', %h },
		body    => defined $json ? 'x' : '',
		json    => $json,
	};
}

sub ok_answer ($method, $path, $res, $what) {
	my @e = OpenAPICheck::errors($method, $path, $res);
	ok(!@e, "accepted: $what") or diag(join "\n", @e);
}

sub bad_answer ($method, $path, $res, $what, $like) {
	my @e = OpenAPICheck::errors($method, $path, $res);
	ok(scalar(grep { /$like/ } @e), "refused: $what") or diag(@e ? join("\n", @e) : 'no error');
}

my $result = { resource_id => $UUID, resource_type => 'call', status => 'cancelled', cancelled_count => 1,
	message => 'Call cancelled.' };
my $cancel = { results => [$result], total_cancelled => 1, %$result };
ok_answer(POST => '/calls/cancel', answer(200, $cancel), 'a cancel answer');
bad_answer(POST => '/calls/cancel', answer(200, { %$cancel, total_cancelled => 'one' }),
	'a count that is not a number', qr/total_cancelled/);
bad_answer(POST => '/calls/cancel', answer(200, { %$cancel, extra => 1 }),
	'a member the document does not have', qr/extra|Properties not allowed/);
bad_answer(POST => '/calls/cancel', answer(200, { results => [ { %$result, status => 'gone' } ], total_cancelled => 1 }),
	'a status that is not a state', qr/status/);
bad_answer(POST => '/calls/cancel', answer(200, $cancel, 'x-request-id' => undef),
	'an answer without X-Request-Id', qr/X-Request-Id/);
bad_answer(POST => '/calls/cancel', answer(201, $cancel), 'a status not documented', qr/201 is not documented/);

# the error bodies of each family
my $uerr = { error => { code => 'not_found', message => 'Batch not found' }, request_id => $RID };
ok_answer(GET => "/calls/status/batch-x?limit=5", answer(404, $uerr), 'a unified 404');
bad_answer(GET => '/calls/status/batch-x', answer(404, { error => 'Batch not found' }),
	'a unified 404 in another family\'s body', qr/error/);
ok_answer(DELETE => "/api/v1/calls/$UUID", answer(404, { error => { message => 'Call not found', code => 404 } }),
	'a Heppu-style 404');
bad_answer(DELETE => "/api/v1/calls/$UUID", answer(404, { error => { message => 'Call not found', code => '404' } }),
	'a Heppu-style code as a string', qr/code/);
ok_answer(POST => "/api/v1/admin/cancel/call_1", answer(503, { ok => JSON::PP::false(), error => 'busy' }, 'retry-after' => '1'),
	'an admin 503 with Retry-After');
bad_answer(POST => "/api/v1/admin/cancel/call_1", answer(503, { ok => JSON::PP::false(), error => 'busy' }),
	'a 503 without Retry-After', qr/Retry-After/);

# what is not in the document
ok_answer(GET => '/nope', answer(404, { error => { code => 'not_found', message => 'Not found' }, request_id => $RID }),
	'404 for a path the document does not have');
bad_answer(GET => '/nope', answer(200, { error => { code => 'not_found', message => 'Not found' }, request_id => $RID }),
	'200 for a path the document does not have', qr/no path of the document/);
ok_answer(PUT => '/calls/cancel', answer(405, { %$uerr, error => { code => 'method_not_allowed', message => 'x' } },
	allow => 'POST'), '405 with Allow for a method the path does not have');
bad_answer(PUT => '/calls/cancel', answer(200, $cancel), '200 for a method the path does not have', qr/has no PUT/);
bad_answer(PUT => '/calls/cancel', answer(405, { %$uerr, error => { code => 'method_not_allowed', message => 'x' } }),
	'405 without Allow', qr/Allow/);
ok_answer(GET => '/api/v1/nope', answer(404, { error => { message => 'Not found', code => 404 } }),
	'an unknown Heppu-style path: its family\'s body');
bad_answer(GET => '/api/v1/nope', answer(404, $uerr), '... not the unified one', qr/not the family/);

# the metrics are text
my $m = answer(200, undef, 'content-type' => 'text/plain; version=0.0.4; charset=utf-8');
$m->{body} = "callstop_up 1\n";
ok_answer(GET => '/callstop-metrics', $m, 'the metrics, as text');

done_testing;
