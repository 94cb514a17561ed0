package OpenAPICheck;

=head1 NAME

OpenAPICheck - every answer the end-to-end tests receive, checked against doc/openapi.yaml

=head1 SYNOPSIS

    # CallstopTest::request does this for every answer:
    OpenAPICheck::check($method, $path, $res);   # $res: status, headers (lower-case), body, json

=head1 DESCRIPTION

The API contract (doc/openapi.yaml) cannot drift from what callstopd and the
nginx site answer: each answer a test receives through
C<CallstopTest::request> is validated with Debian's JSON::Validator
(C<JSON::Validator::Schema::OpenAPIv3>, libjson-validator-perl) against the
operation its method and path name: the status must be documented for that
operation, and its headers and body must match.

An answer to a method and path that are not in the document fails too,
except what the document's introduction promises for them: C<404> for a path
the document does not have, C<405> (with C<Allow>) for a method a documented
path does not have, and what nginx answers before callstopd sees the request
(C<400>, C<401>, C<413>, C<414>, C<429>, C<502>, C<503>, C<504>) - each in the
error body of the family the path's prefix names (or the unified body, for the
errors nginx raises before it has chosen a location).  Not checked: C<599>
(HTTP::Tiny's own "no answer").

A failure is a failed test at once (C<diag> says which answer and why); a
failure in a forked child is written to a spool file and reported by the
parent at exit.  At exit the parent prints how many answers were validated
(C<# openapi: N responses validated against doc/openapi.yaml>), and appends
"file TAB count" to C<$CALLSTOP_OPENAPI_TALLY> if set (make check sums it).

C<CALLSTOP_OPENAPI_CHECK=0> turns the check off.  Without JSON::Validator the
check is skipped with one diag line, unless C<CI> is set (then it fails).

=cut

use v5.36;

use Carp qw(croak);
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use File::Temp qw(tempfile);
use Test::More ();

my $SRCDIR = $ENV{CALLSTOP_SRCDIR} // do { require File::Basename; File::Basename::dirname(__FILE__) . '/../..' };
my $DOC = $ENV{CALLSTOP_OPENAPI_DOC} // "$SRCDIR/doc/openapi.yaml";
my $MAIN = $$;
my ($SCHEMA, @ROUTES, $UNAVAILABLE);
my ($VALIDATED, @CHILD_FAILS) = (0);
my (undef, $SPOOL) = tempfile('openapi-check-XXXXXX', TMPDIR => 1, UNLINK => 0);

# The family of a path, by the longest prefix (src/http/router.c
# router_families), and its error body's schema.
my @FAMILIES = (
	[ '/api/v1/admin/', 'AdminError' ],
	[ '/api/v1/', 'HeppuError' ],
	[ '/v1/api/batch-calls', 'TrilletError' ],
	[ '/v1/batch-calls', 'TrilletError' ],
);

# What nginx answers before a request reaches callstopd (nginx/callstop.conf.in),
# and callstopd's 404/405 of a route that does not exist.
my %UNDOCUMENTED_OK = map { $_ => 1 } (400, 401, 404, 405, 413, 414, 429, 502, 503, 504);
# nginx raises these before it has chosen a location (a malformed request
# line or header, a URI too long, TRACE): the unified body, on any path.
my %SERVER_LEVEL = map { $_ => 1 } (400, 405, 414);

sub enabled () { return !defined $ENV{CALLSTOP_OPENAPI_CHECK} || $ENV{CALLSTOP_OPENAPI_CHECK} ne '0' }

sub _load () {
	return $SCHEMA if $SCHEMA || $UNAVAILABLE;
	my $ok = eval {
		require JSON::Validator::Schema::OpenAPIv3;
		require YAML::XS;
		1;
	};
	if (!$ok) {
		$UNAVAILABLE = "JSON::Validator or YAML::XS missing (Debian: libjson-validator-perl): $@";
		croak "openapi: $UNAVAILABLE" if $ENV{CI};
		Test::More::diag("openapi: answers not validated: $UNAVAILABLE");
		return;
	}
	local $YAML::XS::Boolean = 'JSON::PP';
	my $data = _inline(YAML::XS::LoadFile($DOC));
	# The document is OpenAPI 3.1; the validator's own check of the
	# document would fetch the 3.1 meta-schema from the network, so it is
	# not run (redocly lint checks the document in make check).
	$SCHEMA = JSON::Validator::Schema::OpenAPIv3->new($data);
	# OpenAPI classes coerce "404" to 404 by default (query strings are
	# text); an answer's JSON has its own types, and they are the contract.
	$SCHEMA->coerce({});
	$SCHEMA->resolve;
	for my $path (sort keys %{ $data->{paths} }) {
		my @segs = split m{/}, $path, -1;
		my $re = join '/', map { /^\{.*\}$/ ? '[^/]+' : quotemeta } @segs;
		my $vars = () = $path =~ /\{/g;
		my %methods = map { lc($_) => 1 } grep { /^(?:get|put|post|delete|patch|head|options|trace)$/ }
			keys %{ $data->{paths}{$path} };
		push @ROUTES, { path => $path, re => qr/^$re$/, vars => $vars, methods => \%methods };
	}
	# literal segments before templated ones, as the routing table tries them
	@ROUTES = sort { $a->{vars} <=> $b->{vars} || $a->{path} cmp $b->{path} } @ROUTES;
	return $SCHEMA;
}

# The document with its response, header and parameter $refs replaced by
# what they name (the validator resolves only the schemas' own).
sub _inline ($doc) {
	my $walk;
	$walk = sub ($node) {
		if (ref $node eq 'HASH') {
			if (defined $node->{'$ref'} && $node->{'$ref'} =~ m{^#/components/(responses|headers|parameters)/(.+)$}) {
				return $walk->($doc->{components}{$1}{$2} // croak "openapi: $node->{'$ref'} is not defined");
			}
			return { map { $_ => $walk->($node->{$_}) } keys %$node };
		}
		return [ map { $walk->($_) } @$node ] if ref $node eq 'ARRAY';
		return $node;
	};
	my $out = $walk->($doc);
	undef $walk;
	return $out;
}

# The path nginx routes on: no query, no empty or dot segments.
sub _normalise ($path) {
	$path =~ s/[?#].*//s;
	my @out;
	for my $seg (split m{/+}, $path) {
		next if $seg eq '' || $seg eq '.';
		if ($seg eq '..') { pop @out; next }
		push @out, $seg;
	}
	return '/' . join('/', @out) . ($path =~ m{/$} && @out ? '/' : '');
}

sub _family_schema ($path) {
	for my $f (@FAMILIES) {
		return $f->[1] if index($path, $f->[0]) == 0;
	}
	return 'UnifiedError';
}

sub _body_value ($res) {
	my $ct = $res->{headers}{'content-type'} // '';
	return (undef, $ct) unless length($res->{body} // '');
	return ($res->{body}, $ct) unless $ct =~ m{^application/json\b}i;
	return ($res->{json}, $ct) if defined $res->{json};
	return (\'invalid', $ct);
}

# The errors of one answer against an operation of the document.
sub _check_operation ($method, $template, $res) {
	my $status = $res->{status};
	return ("status $status is not documented for " . uc($method) . " $template")
		unless $SCHEMA->parameters_for_response([ $method, $template, $status ]);
	my ($value, $ct) = _body_value($res);
	return ("the body is not JSON (Content-Type $ct)") if ref $value eq 'SCALAR';
	# the media type alone: the validator's parser takes one parameter at
	# most, and metrics have two (version, charset)
	$ct = $1 if $ct =~ m{^\s*([^;\s]+)};
	my %h = %{ $res->{headers} };
	return map {"$_"} $SCHEMA->validate_response(
		[ $method, $template, $status ],
		{
			body => sub ($name, $param) {
				return { exists => defined $value, value => $value, content_type => $ct };
			},
			header => sub ($name, $param) {
				my $v = $h{ lc $name };
				return { exists => defined $v, value => $v };
			},
		});
}

# An answer the document has no operation for: an error nginx or the router
# raises, in the family's body.
sub _check_undocumented ($method, $path, $res, $why) {
	my $status = $res->{status};
	return ("$why, and its status $status is not one the document promises for that")
		unless $UNDOCUMENTED_OK{$status} && ($status != 404 || $why =~ /^no path/)
		&& ($why !~ /^nginx/ || $SERVER_LEVEL{$status});
	return ("405 without an Allow header") if $status == 405 && !defined $res->{headers}{allow};
	my ($value, $ct) = _body_value($res);
	return () if !defined $value && uc $method eq 'HEAD';
	return ("$why; its $status body is not JSON: " . substr($res->{body} // '', 0, 80))
		unless ref $value eq 'HASH';
	my @names = (_family_schema($path));
	push @names, 'UnifiedError' if $SERVER_LEVEL{$status} && $names[0] ne 'UnifiedError';
	my @errors;
	for my $name (@names) {
		my @e = $SCHEMA->validate($value, $SCHEMA->get([ components => schemas => $name ]));
		return () unless @e;
		push @errors, map {"$name$_"} @e;
	}
	return ("$why; its $status body is not the family's error body: @errors");
}

=over

=item errors($method, $path, $res)

The errors of one answer against the document (empty: it matches); records
nothing.  Dies if the validator cannot be loaded.

=item check($method, $path, $res)

errors(), and the outcome recorded: a failed test at once, or a spool line in
a forked child.  Returns the errors.

=back

=cut

sub errors ($method, $path, $res) {
	_load() or croak "openapi: $UNAVAILABLE";
	my $lc = lc $method;
	my $norm = _normalise($path);
	my ($route) = grep { $norm =~ $_->{re} } @ROUTES;
	my @errors;
	eval {
		if (!$route) {
			@errors = _check_undocumented($method, $norm, $res, "no path of the document matches $norm");
		} elsif (!$route->{methods}{$lc}) {
			@errors = _check_undocumented($method, $norm, $res, "$route->{path} has no " . uc($method));
		} elsif ($SERVER_LEVEL{ $res->{status} }
			&& !$SCHEMA->parameters_for_response([ $lc, $route->{path}, $res->{status} ])) {
			# nginx refused the request line before choosing a location
			@errors = _check_undocumented($method, $norm, $res, "nginx answered before routing");
		} else {
			@errors = _check_operation($lc, $route->{path}, $res);
		}
		1;
	} or @errors = ("the validator failed: $@");
	return @errors;
}

sub check ($method, $path, $res) {
	return () unless enabled();
	return () if !defined $res->{status} || $res->{status} == 599;
	_load() or return ();
	my @errors = errors($method, $path, $res);
	my $shown = length($path) > 100 ? substr($path, 0, 100) . '...' : $path;
	_record(uc($method) . " $shown -> $res->{status}", @errors);
	return @errors;
}

sub _record ($what, @errors) {
	if ($$ == $MAIN) {
		$VALIDATED++;
		return unless @errors;
		Test::More::ok(0, "the answer to $what matches doc/openapi.yaml");
		Test::More::diag("openapi: $_") for @errors;
		return;
	}
	# a forked child: the parent reports it at exit
	sysopen(my $fh, $SPOOL, O_WRONLY | O_APPEND | O_CREAT) or return;
	my $line = @errors ? join("\t", 'FAIL', $what, @errors) : 'OK';
	$line =~ s/\n/ /g;
	syswrite($fh, "$line\n");
	close $fh;
	return;
}

sub validated () { return $VALIDATED }

END {
	if ($$ == $MAIN && enabled()) {
		my $code = $?;
		if (open(my $fh, '<', $SPOOL)) {
			while (my $line = <$fh>) {
				chomp $line;
				$VALIDATED++;
				next if $line eq 'OK';
				my (undef, $what, @e) = split /\t/, $line;
				Test::More::ok(0, "the answer to $what (in a child process) matches doc/openapi.yaml");
				Test::More::diag("openapi: $_") for @e;
			}
			close $fh;
		}
		unlink $SPOOL;
		if ($SCHEMA) {
			Test::More::diag("openapi: $VALIDATED responses validated against doc/openapi.yaml");
			if (my $tally = $ENV{CALLSTOP_OPENAPI_TALLY}) {
				if (sysopen(my $t, $tally, O_WRONLY | O_APPEND | O_CREAT)) {
					syswrite($t, "$0\t$VALIDATED\n");
					close $t;
				}
			}
		}
		$? = $code;
	} elsif ($$ == $MAIN) {
		unlink $SPOOL;
	}
}

1;
