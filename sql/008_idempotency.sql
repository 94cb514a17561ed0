-- 008_idempotency.sql - safe retries: Idempotency-Key (SPEC 8; issue 13).
-- Add-only.
--
-- The request layer of callstopd (src/http/idempotency.c) drives a keyed
-- request as:
--   BEGIN; callstop_idempotency_claim() (waits for a holder of the key, then
--   answers run / replay / reused / in_flight); the route's effects;
--   callstop_idempotency_store() (the answer, with the effects); COMMIT;
--   and, if termination requests are sent after the commit, once they are
--   answered: callstop_idempotency_finish() (the answer the client got).
-- A key's holder is an advisory lock on the key (hash of scope and key):
-- transaction-scoped until the commit, then, only while termination
-- requests are still being sent, held at session level until finish.  A
-- worker killed on the way loses its connection, and with it the lock and
-- any uncommitted row: a key is stored with its effects or not at all.

-- One key of one caller.  scope: 'tenant:<tenants.id>', or
-- 'admin:<admin_tokens.id>' for the admin cancel (SPEC 4.3).  fingerprint:
-- hex SHA-256 over the method, the route and its path id, the query string
-- and the SHA-256 of the body.  body: the JSON answer, as sent.
CREATE TABLE callstop_idempotency (
	scope       text NOT NULL,
	key         text NOT NULL CHECK (key ~ '^[A-Za-z0-9_.:-]{1,255}$'),
	fingerprint text NOT NULL,
	status      integer NOT NULL CHECK (status BETWEEN 200 AND 599),
	body        text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL,
	PRIMARY KEY (scope, key)
);

-- The pruning walks expired keys oldest first, a bounded batch at a time.
CREATE INDEX callstop_idempotency_expires ON callstop_idempotency (expires_at);

-- The advisory lock of a key (one 64-bit space; a collision only makes two
-- keys wait for each other).
CREATE FUNCTION callstop_idempotency_lock_id(p_scope text, p_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT hashtextextended(p_scope || ' ' || p_key, 8)
$$;

-- Inside the request's transaction, before its effects.  Waits up to
-- p_wait_ms for a request holding the same key (lock_timeout, restored
-- after), then:
--   'in_flight'  still held after the wait (SPEC 8: 409);
--   'replay'     stored and not expired, same fingerprint: status and body;
--   'reused'     stored and not expired, another fingerprint (SPEC 8: 422);
--   'run'        the key is free: the caller runs and holds it until commit.
CREATE FUNCTION callstop_idempotency_claim(p_scope text, p_key text, p_fingerprint text, p_wait_ms integer,
					   OUT verdict text, OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
	v_lock bigint := callstop_idempotency_lock_id(p_scope, p_key);
	v_timeout text := current_setting('lock_timeout');
	r callstop_idempotency%ROWTYPE;
BEGIN
	IF p_wait_ms <= 0 THEN
		IF NOT pg_try_advisory_xact_lock(v_lock) THEN
			verdict := 'in_flight';
			RETURN;
		END IF;
	ELSE
		PERFORM set_config('lock_timeout', p_wait_ms::text, true);
		BEGIN
			PERFORM pg_advisory_xact_lock(v_lock);
		EXCEPTION WHEN lock_not_available THEN
			PERFORM set_config('lock_timeout', v_timeout, true);
			verdict := 'in_flight';
			RETURN;
		END;
		PERFORM set_config('lock_timeout', v_timeout, true);
	END IF;
	-- a new snapshot: the row of a holder that committed while we waited
	SELECT * INTO r FROM callstop_idempotency i
	WHERE i.scope = p_scope AND i.key = p_key AND i.expires_at > now();
	IF NOT FOUND THEN
		verdict := 'run';
	ELSIF r.fingerprint <> p_fingerprint THEN
		verdict := 'reused';
	ELSE
		verdict := 'replay';
		status := r.status;
		body := r.body;
	END IF;
END;
$$;

-- Inside the request's transaction, after its effects: its answer, kept
-- p_ttl_s seconds (an expired row of the same key is replaced).  p_hold:
-- requests still go out after the commit, so the key stays held (session
-- lock) until callstop_idempotency_finish().
CREATE FUNCTION callstop_idempotency_store(p_scope text, p_key text, p_fingerprint text, p_status integer,
					   p_body text, p_ttl_s integer, p_hold boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO callstop_idempotency (scope, key, fingerprint, status, body, expires_at)
	VALUES (p_scope, p_key, p_fingerprint, p_status, p_body, now() + make_interval(secs => p_ttl_s))
	ON CONFLICT (scope, key) DO UPDATE
	SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
	    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;
	IF p_hold THEN
		PERFORM pg_advisory_lock(callstop_idempotency_lock_id(p_scope, p_key));
	END IF;
END;
$$;

-- After the termination requests of a stored answer: the answer the client
-- got (the stored one said "queued", which stays true if this never runs),
-- and the key is let go.
CREATE FUNCTION callstop_idempotency_finish(p_scope text, p_key text, p_status integer, p_body text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE callstop_idempotency SET status = p_status, body = p_body
	WHERE scope = p_scope AND key = p_key AND (status <> p_status OR body <> p_body);
	PERFORM pg_advisory_unlock(callstop_idempotency_lock_id(p_scope, p_key));
END;
$$;

-- Expired keys, at most p_limit of them, oldest first; a key being replaced
-- right now is skipped.  Returns how many were deleted.
CREATE FUNCTION callstop_idempotency_prune(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	DELETE FROM callstop_idempotency WHERE (scope, key) IN (
		SELECT scope, key FROM callstop_idempotency
		WHERE expires_at <= now() ORDER BY expires_at LIMIT p_limit
		FOR UPDATE SKIP LOCKED);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;
