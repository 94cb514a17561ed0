-- 014_inline_predicates.sql - the small predicates of 002 and 010 inlined
-- (issue 11 item 2).  Add-only: the same functions, names, signatures and
-- bodies; only STRICT goes.
--
-- A STRICT SQL function is inlined only if the planner can prove its body
-- strict, which it does not for these (a CASE; an IN list), so every call
-- (the cancel's lookup and its "is it active", the status page's lookup) ran
-- the SQL function executor, which parses and plans the body each time.
-- Inlined, they are part of their caller's plan (t/G0 checks the cancel
-- core's plans).  A NULL argument still gives NULL (a CASE of a NULL match;
-- NULL IN (...)).

CREATE OR REPLACE FUNCTION callstop_uuid_or_null(p text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN p ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
		THEN p::uuid END
$$;

CREATE OR REPLACE FUNCTION callstop_call_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT p_status IN ('initiated', 'connecting', 'ringing', 'running')
$$;

-- a paused batch is active (010_campaign.sql, SPEC 10.1)
CREATE OR REPLACE FUNCTION callstop_batch_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT p_status IN ('pending', 'processing', 'paused')
$$;
