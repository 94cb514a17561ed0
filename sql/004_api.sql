-- 004_api.sql - helpers of the read side of the API (SPEC 3.2).

-- RFC 3339 in UTC with milliseconds ("2026-11-21T04:58:19.123Z"); NULL stays NULL.
CREATE FUNCTION callstop_rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
