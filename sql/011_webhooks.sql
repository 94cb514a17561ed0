-- 011_webhooks.sql - signed webhooks: the events outbox (SPEC 9, issue 14).
--
-- Every change is announced by an event row written in the transaction of
-- the change (callstop_event()), with one delivery row per endpoint of the
-- tenant that wants its type.  The delivery child (src/pm/delivery.c) claims
-- due deliveries with FOR UPDATE SKIP LOCKED, so that the children of several
-- hosts share one database, signs and sends them.  Add-only.

-- A tenant's endpoints (callstopctl webhook add).  The secret is stored as
-- issued ("whsec_" + base64 of 32 random bytes, Standard Webhooks 1.0): it
-- signs, so a hash would not do.  After a rotation the previous secret also
-- signs until previous_secret_until.  event_types NULL = every type.
CREATE TABLE webhook_endpoints (
	id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id             bigint NOT NULL REFERENCES tenants(id),
	url                   text NOT NULL CHECK (url ~ '^https?://'),
	event_types           text[],
	secret                text NOT NULL CHECK (secret LIKE 'whsec\_%'),
	previous_secret       text CHECK (previous_secret LIKE 'whsec\_%'),
	previous_secret_until timestamptz,
	-- enabled; disabled (the receiver answered 410 Gone); removed (by the
	-- operator; kept so that the deliveries keep their endpoint)
	state                 text NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'disabled', 'removed')),
	state_reason          text,
	created_at            timestamptz NOT NULL DEFAULT now(),
	updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id) WHERE state = 'enabled';

-- One row per event.  uid is the webhook-id header, the same on every
-- attempt and every replay.  seq numbers the events of one resource
-- (resource_type, resource_id) from 1, in the order their transactions
-- committed: deliveries of one resource to one endpoint go out in seq order.
-- body is the payload as sent ({"type", "timestamp", "data"}): the
-- signature covers these bytes, so a replay sends them unchanged.
CREATE TABLE webhook_events (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	uid           text NOT NULL UNIQUE DEFAULT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
	tenant_id     bigint NOT NULL REFERENCES tenants(id),
	type          text NOT NULL,
	resource_type text NOT NULL,
	resource_id   text NOT NULL,
	seq           integer NOT NULL,
	body          text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, resource_type, resource_id, seq)
);

-- One row per (event, endpoint).  The resource and seq are copied from the
-- event so that the claim's ordering test reads one index.  queued_at starts
-- the webhook_max_age clock (a replay restarts it); claimed_until marks a
-- delivery on its way out: one whose child died is due again when it passes.
CREATE TABLE webhook_deliveries (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id        bigint NOT NULL REFERENCES webhook_events(id),
	endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints(id),
	resource_type   text NOT NULL,
	resource_id     text NOT NULL,
	seq             integer NOT NULL,
	state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	claimed_until   timestamptz,
	last_status     integer,
	last_error      text,
	queued_at       timestamptz NOT NULL DEFAULT now(),
	delivered_at    timestamptz,
	updated_at      timestamptz NOT NULL DEFAULT now(),
	UNIQUE (event_id, endpoint_id)
);
-- The claim walks this in order and stops at its LIMIT.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE state = 'pending';
-- "the earliest pending event of this resource to this endpoint"
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, resource_type, resource_id, seq)
	WHERE state = 'pending';
-- the given-up ones, counted by /callstop-metrics without reading the rest
CREATE INDEX webhook_deliveries_failed_idx ON webhook_deliveries (id) WHERE state = 'failed';
-- No index by endpoint: every one more is written on the cancel's hot path;
-- callstopctl webhook deliveries --endpoint reads the newest first by id.

-- Wakes the delivery children (LISTEN callstop_webhook): once per statement,
-- and PostgreSQL folds equal notifications of one transaction into one.
CREATE FUNCTION callstop_webhook_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callstop_webhook', '');
	RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_webhook_notify();

-- The request context of the change, set by callstop_cancel() (and any other
-- state-changing function) as transaction-local settings.
CREATE FUNCTION callstop_event_context() RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('route', nullif(current_setting('callstop.route', true), ''),
	                          'request_id', nullif(current_setting('callstop.request_id', true), ''))
$$;

-- Announce one change (SPEC 9): write the event and its deliveries, in the
-- caller's transaction.  Nothing is written when no enabled endpoint of the
-- tenant wants p_type (the cancel's hot path pays one index probe then).
-- The events of one resource are serialised by a transaction-level advisory
-- lock (class 0x57484b31, "WHK1"), so that seq follows commit order.
-- Other state-changing paths (aliases, admin, campaign control, suppression,
-- termination verdicts) call it with their own types and data.
CREATE OR REPLACE FUNCTION callstop_event(p_tenant_id bigint, p_type text, p_resource_type text,
                                          p_resource_id text, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_seq integer;
	v_id bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e
	               WHERE e.tenant_id = p_tenant_id AND e.state = 'enabled'
	                 AND (e.event_types IS NULL OR p_type = ANY (e.event_types))) THEN
		RETURN;
	END IF;
	PERFORM pg_advisory_xact_lock(1464355633, hashtext(p_resource_type || ':' || p_resource_id));
	SELECT coalesce(max(ev.seq), 0) + 1 INTO v_seq FROM webhook_events ev
	WHERE ev.tenant_id = p_tenant_id AND ev.resource_type = p_resource_type
	  AND ev.resource_id = p_resource_id;
	INSERT INTO webhook_events (tenant_id, type, resource_type, resource_id, seq, body)
	VALUES (p_tenant_id, p_type, p_resource_type, p_resource_id, v_seq,
	        json_build_object('type', p_type, 'timestamp', callstop_rfc3339(now()), 'data', p_data)::text)
	RETURNING id INTO v_id;
	INSERT INTO webhook_deliveries (event_id, endpoint_id, resource_type, resource_id, seq)
	SELECT v_id, e.id, p_resource_type, p_resource_id, v_seq FROM webhook_endpoints e
	WHERE e.tenant_id = p_tenant_id AND e.state = 'enabled'
	  AND (e.event_types IS NULL OR p_type = ANY (e.event_types));
END;
$$;

-- The delivery child's claim (SPEC 9): up to p_limit due deliveries, oldest
-- due first, each the earliest pending event of its resource to its
-- endpoint (one in flight is pending: its successors wait), FOR UPDATE SKIP
-- LOCKED so that several hosts share them.  A claim counts the attempt and
-- holds the row for p_lease seconds (next_attempt_at too, so that rows in
-- flight leave the due range); one whose child died is due again then.
--
-- The walk of the due index must stop at the LIMIT: the per-row min(seq) is
-- a subplan on the order index (not an anti-join), and sorts and bitmap
-- scans are off for this function, because a queue that grew since the last
-- ANALYZE (10 000 events written at once) is estimated at a few rows and
-- was planned as a scan and sort of all of them, the subplan run for each:
-- 20 ms a claim instead of 0.4 ms.
CREATE FUNCTION callstop_webhook_claim(p_limit integer, p_lease integer)
RETURNS TABLE (id bigint, endpoint_id bigint, uid text, body text, url text, secret text,
               previous_secret text, attempts integer, age_s bigint)
LANGUAGE sql
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
	UPDATE webhook_deliveries d SET attempts = d.attempts + 1, updated_at = now(),
		claimed_until = now() + make_interval(secs => p_lease),
		next_attempt_at = now() + make_interval(secs => p_lease)
	FROM webhook_events e, webhook_endpoints p
	WHERE d.id IN (SELECT x.id FROM webhook_deliveries x
	               WHERE x.state = 'pending' AND x.next_attempt_at <= now()
	                 AND x.seq = (SELECT min(y.seq) FROM webhook_deliveries y
	                              WHERE y.endpoint_id = x.endpoint_id AND y.resource_type = x.resource_type
	                                AND y.resource_id = x.resource_id AND y.state = 'pending')
	               ORDER BY x.next_attempt_at, x.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
	  AND e.id = d.event_id AND p.id = d.endpoint_id AND p.state = 'enabled'
	RETURNING d.id, d.endpoint_id, e.uid, e.body, p.url, p.secret,
		CASE WHEN p.previous_secret_until > now() THEN p.previous_secret END, d.attempts,
		floor(extract(epoch FROM now() - d.queued_at))::bigint
$$;

-- callstopctl webhook test ID: a webhook.test event for that endpoint alone
-- (whatever its --events), its resource the endpoint.  Returns the event uid,
-- NULL if there is no such enabled endpoint.
CREATE FUNCTION callstop_webhook_test(p_endpoint_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_ep webhook_endpoints%ROWTYPE;
	v_seq integer;
	v_id bigint;
	v_uid text;
BEGIN
	SELECT * INTO v_ep FROM webhook_endpoints WHERE id = p_endpoint_id AND state = 'enabled';
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(1464355633, hashtext('endpoint:' || p_endpoint_id));
	SELECT coalesce(max(seq), 0) + 1 INTO v_seq FROM webhook_events
	WHERE tenant_id = v_ep.tenant_id AND resource_type = 'endpoint' AND resource_id = p_endpoint_id::text;
	INSERT INTO webhook_events (tenant_id, type, resource_type, resource_id, seq, body)
	VALUES (v_ep.tenant_id, 'webhook.test', 'endpoint', p_endpoint_id::text, v_seq,
	        json_build_object('type', 'webhook.test', 'timestamp', callstop_rfc3339(now()),
	                          'data', json_build_object('endpoint_id', p_endpoint_id))::text)
	RETURNING id, uid INTO v_id, v_uid;
	INSERT INTO webhook_deliveries (event_id, endpoint_id, resource_type, resource_id, seq)
	VALUES (v_id, p_endpoint_id, 'endpoint', p_endpoint_id::text, v_seq);
	RETURN v_uid;
END;
$$;

-- The receiver answered 410 Gone: the endpoint is disabled and its pending
-- deliveries fail (nothing would ever deliver them).  Returns the endpoint.
CREATE FUNCTION callstop_webhook_gone(p_delivery_id bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_ep bigint;
BEGIN
	SELECT endpoint_id INTO v_ep FROM webhook_deliveries WHERE id = p_delivery_id;
	UPDATE webhook_endpoints SET state = 'disabled', state_reason = '410 Gone', updated_at = now()
	WHERE id = v_ep AND state = 'enabled';
	UPDATE webhook_deliveries SET state = 'failed', last_error = 'endpoint disabled (410 Gone)',
		claimed_until = NULL, updated_at = now()
	WHERE endpoint_id = v_ep AND state = 'pending' AND id <> p_delivery_id;
	RETURN v_ep;
END;
$$;

-- ---------------------------------------------------------------------------
-- call.terminated / call.termination_failed (SPEC 9, 11): when the last of a
-- call's targets leaves pending or sent for a final state (done, failed,
-- unknown: 009_verify.sql).  seconds_to_silence runs from the call's end
-- (the cancel's commit) to the latest target's verified_at (a target that
-- has none, an OpenAI hangup written before 009, counts from its last
-- update).  The advisory lock of the call's events serialises
-- two targets finishing at once in two transactions; the check for an
-- earlier verdict event makes it once per call.

CREATE FUNCTION callstop_webhook_termination() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_targets jsonb;
	v_failed boolean;
	v_secs numeric;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.tenant_id = NEW.tenant_id AND e.state = 'enabled') THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(1464355633, hashtext('call:' || NEW.call_id::text));
	IF EXISTS (SELECT 1 FROM termination_outbox o
	           WHERE o.call_id = NEW.call_id AND o.state NOT IN ('done', 'failed', 'unknown'))
	   OR EXISTS (SELECT 1 FROM webhook_events ev
	              WHERE ev.tenant_id = NEW.tenant_id AND ev.resource_type = 'call'
	                AND ev.resource_id = NEW.call_id::text
	                AND ev.type IN ('call.terminated', 'call.termination_failed')) THEN
		RETURN NULL;
	END IF;
	-- targets as GET /calls/status shows them (SPEC 3.2 with 11's verified_at
	-- and seconds_to_silence: DB_CALL_TARGETS in src/common/statements.c)
	SELECT jsonb_agg(jsonb_build_object('provider', o.provider, 'target', o.target, 'state', o.state,
	                                    'attempts', o.attempts, 'last_error', o.last_error,
	                                    'verified_at', callstop_rfc3339(o.verified_at),
	                                    'seconds_to_silence',
	                                    round(extract(epoch FROM o.verified_at - o.created_at)::numeric, 3))
	                 ORDER BY o.id),
		bool_or(o.state <> 'done'),
		extract(epoch FROM max(coalesce(o.verified_at, o.updated_at))
		                   - (SELECT c.ended_at FROM voice_call_logs c WHERE c.id = NEW.call_id))
	INTO v_targets, v_failed, v_secs
	FROM termination_outbox o WHERE o.call_id = NEW.call_id;
	IF v_failed THEN
		PERFORM callstop_event(NEW.tenant_id, 'call.termination_failed', 'call', NEW.call_id::text,
		                       jsonb_build_object('call_log_id', NEW.call_id, 'targets', v_targets));
	ELSE
		PERFORM callstop_event(NEW.tenant_id, 'call.terminated', 'call', NEW.call_id::text,
		                       jsonb_build_object('call_log_id', NEW.call_id, 'targets', v_targets,
		                                          'seconds_to_silence', round(greatest(v_secs, 0), 3)));
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER termination_outbox_webhook_update AFTER UPDATE OF state ON termination_outbox
	FOR EACH ROW
	WHEN (OLD.state IN ('pending', 'sent') AND NEW.state IN ('done', 'failed', 'unknown'))
	EXECUTE FUNCTION callstop_webhook_termination();
-- A target written failed at once (its provider not configured): the
-- trigger fires at the end of the cancel's statement, after its
-- call.cancelled.
CREATE TRIGGER termination_outbox_webhook_insert AFTER INSERT ON termination_outbox
	FOR EACH ROW
	WHEN (NEW.state IN ('done', 'failed', 'unknown'))
	EXECUTE FUNCTION callstop_webhook_termination();

-- ---------------------------------------------------------------------------
-- call.cancelled and batch.cancelled are written by the cancel core itself:
-- callstop_terminate_calls() announces each call it cancels (every call
-- cancel goes through it), and callstop_cancel() sets the request's route
-- and request_id as transaction-local settings (callstop.route,
-- callstop.request_id, read by callstop_event_context()) and announces a
-- batch it cancels once, not once per entry.  Both are re-created with
-- these additions in 012_cancel_core.sql.
