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
-- call's targets leaves pending (or sent, 009_*'s state) for a final state.
-- Written to work with and without 009: final = done | failed | unknown.
-- seconds_to_silence runs from the call's end (the cancel's commit) to the
-- latest target's verified_at where that column exists, else its updated_at
-- (the provider's answer), read through to_jsonb so that this function
-- compiles either way.  The advisory lock of the call's events serialises
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
	SELECT jsonb_agg(jsonb_build_object('provider', o.provider, 'target', o.target, 'state', o.state,
	                                    'attempts', o.attempts, 'last_error', o.last_error) ORDER BY o.id),
		bool_or(o.state <> 'done'),
		extract(epoch FROM max(coalesce((to_jsonb(o) ->> 'verified_at')::timestamptz, o.updated_at))
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
-- call.cancelled: every call cancel goes through callstop_terminate_calls()
-- (006_contracts.sql), re-created here with one more step, ev, which
-- announces each call it cancelled.  ev is read by the final SELECT so that
-- it runs (a plain SELECT in WITH runs only if read); it sees c's RETURNING,
-- so the data is the call as cancelled.  The rest is 006's, unchanged.
CREATE OR REPLACE FUNCTION callstop_terminate_calls(p_call_ids uuid[], p_end_reason text, p_providers text[])
RETURNS TABLE (call_id uuid, livekit_room text, openai_call_id text, outbox_ids bigint[],
               outbox_rows callstop_outbox_ref[])
LANGUAGE sql AS $$
	WITH c AS (
		UPDATE voice_call_logs SET status = 'cancelled', ended_at = now(),
			end_reason = p_end_reason, updated_at = now()
		WHERE id = ANY (p_call_ids) AND callstop_call_is_active(status)
		RETURNING id, tenant_id, batch_id, batch_entry_id, livekit_room, openai_call_id, status, end_reason,
			ended_at
	), e AS (  -- runs to completion although nothing reads it
		UPDATE voice_call_batch_entries en SET status = 'cancelled', updated_at = now()
		FROM c WHERE en.id = c.batch_entry_id AND en.status IN ('claimed', 'running')
		RETURNING en.id
	), ev AS (
		SELECT callstop_event(c.tenant_id, 'call.cancelled', 'call', c.id::text,
			jsonb_build_object('call_log_id', c.id, 'status', c.status,
				'batch_job_id', (SELECT b.job_id FROM voice_call_batches b WHERE b.id = c.batch_id),
				'end_reason', c.end_reason, 'cancelled_at', callstop_rfc3339(c.ended_at))
			|| callstop_event_context())
		FROM c
	), o AS (
		INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, last_error,
		                                idempotency_key)
		SELECT c.tenant_id, c.id, t.provider, t.target,
			CASE WHEN t.provider = ANY (p_providers) THEN 'pending' ELSE 'failed' END,
			CASE WHEN t.provider = ANY (p_providers) THEN NULL ELSE t.label || ' not configured' END,
			-- SPEC 4.3: the admin hangup's key names the call; any other
			-- row's key is only unique.  Either is reused by every retry.
			CASE WHEN p_end_reason = 'admin_cancel' AND t.provider = 'openai'
				THEN 'admin_hangup_' || t.target || '_' || gen_random_uuid()
				ELSE gen_random_uuid()::text END
		FROM c CROSS JOIN LATERAL (VALUES
			('livekit', 'LiveKit', c.livekit_room),
			('openai', 'OpenAI', c.openai_call_id)) AS t (provider, label, target)
		WHERE t.target IS NOT NULL
		RETURNING id, termination_outbox.call_id, termination_outbox.provider
	)
	SELECT c.id, c.livekit_room, c.openai_call_id,
		coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.id IS NOT NULL), '{}'),
		coalesce(array_agg(ROW(o.id, o.provider)::callstop_outbox_ref ORDER BY o.id)
			FILTER (WHERE o.id IS NOT NULL), '{}')
	FROM c LEFT JOIN o ON o.call_id = c.id
	WHERE (SELECT count(*) FROM ev) >= 0
	GROUP BY c.id, c.livekit_room, c.openai_call_id
$$;

-- callstop_cancel() as last created in 006_contracts.sql, re-created with two
-- additions: it first sets the request's route and request_id as
-- transaction-local settings (callstop.route, callstop.request_id) for the
-- events written below it, and a batch it cancels is announced once
-- (batch.cancelled), not once per entry.  One statement, the lock order and
-- the outcomes are 006's, unchanged.
CREATE OR REPLACE FUNCTION callstop_cancel(p_tenant_id bigint, p_types text[], p_refs text[], p_force boolean,
                                p_route text, p_key_id bigint, p_request_id text,
                                p_end_reason text, p_providers text[])
RETURNS TABLE (ord integer, resource_type text, outcome text, status text, cancelled_count integer,
               pending_cancelled integer, active_count integer, resource_uuid uuid, job_id text,
               tenant_id bigint, livekit_room text, openai_call_id text, outbox_ids bigint[],
               outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	i integer;
	v_call voice_call_logs%ROWTYPE;
	v_batch voice_call_batches%ROWTYPE;
	v_p integer;
	v_a integer;
	v_ids bigint[];
	v_rows callstop_outbox_ref[];
	v_term record;
BEGIN
	-- The request's context, for the events of this transaction (SPEC 9).
	PERFORM set_config('callstop.route', coalesce(p_route, ''), true),
		set_config('callstop.request_id', coalesce(p_request_id, ''), true);
	-- Lock in a fixed order: every batch the request can touch (named, or
	-- the batch of a named call) by id, then the named calls by id.
	PERFORM 1 FROM voice_call_batches b
	WHERE b.id IN (
		SELECT bb.id FROM unnest(p_types, p_refs) AS r (type, ref)
		JOIN voice_call_batches bb ON bb.tenant_id = p_tenant_id AND bb.job_id = r.ref
		WHERE r.type = 'batch'
		UNION ALL
		SELECT bb.id FROM unnest(p_types, p_refs) AS r (type, ref)
		JOIN voice_call_batches bb ON bb.tenant_id = p_tenant_id AND bb.id = callstop_uuid_or_null(r.ref)
		WHERE r.type = 'batch'
		UNION ALL
		SELECT c.batch_id FROM callstop_find_calls(p_tenant_id, p_types, p_refs) c)
	ORDER BY b.id FOR NO KEY UPDATE;
	PERFORM 1 FROM voice_call_logs c
	WHERE c.id IN (SELECT f.id FROM callstop_find_calls(p_tenant_id, p_types, p_refs) f)
	ORDER BY c.id FOR UPDATE;

	FOR i IN 1 .. coalesce(array_length(p_refs, 1), 0) LOOP
		ord := i;
		cancelled_count := 0; pending_cancelled := 0; active_count := 0;
		resource_uuid := NULL; job_id := NULL; tenant_id := NULL;
		livekit_room := NULL; openai_call_id := NULL; outbox_ids := '{}'; outbox_rows := '{}';

		IF p_types[i] = 'batch' THEN
			resource_type := 'batch';
			SELECT b.* INTO v_batch FROM voice_call_batches b
			WHERE b.tenant_id = p_tenant_id
			  AND (b.job_id = p_refs[i] OR b.id = callstop_uuid_or_null(p_refs[i]));
			IF NOT FOUND THEN
				outcome := 'not_found'; status := 'not_found';
				RETURN NEXT;
				CONTINUE;
			END IF;
			resource_uuid := v_batch.id; job_id := v_batch.job_id; tenant_id := v_batch.tenant_id;
			status := v_batch.status;
			SELECT count(*) INTO v_a FROM voice_call_logs c
			WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status);

			IF v_batch.status IN ('pending', 'processing', 'paused') THEN
				UPDATE voice_call_batch_entries SET status = 'cancelled', updated_at = now()
				WHERE batch_id = v_batch.id AND voice_call_batch_entries.status IN ('pending', 'claimed');
				GET DIAGNOSTICS v_p = ROW_COUNT;
				UPDATE voice_call_batches SET status = 'cancelled', cancelled_at = now(), updated_at = now()
				WHERE id = v_batch.id;
				outcome := 'cancelled'; status := 'cancelled';
				pending_cancelled := v_p; active_count := v_a; cancelled_count := v_p;
			ELSIF v_batch.status IN ('cancelled', 'stopped') AND p_force AND v_a > 0 THEN
				outcome := 'already_cancelled'; active_count := v_a;
			ELSE
				outcome := 'terminal';
				RETURN NEXT;
				CONTINUE;
			END IF;

			IF p_force AND v_a > 0 THEN
				v_ids := '{}'; v_rows := '{}';
				FOR v_term IN SELECT * FROM callstop_terminate_calls(ARRAY(
						SELECT c.id FROM voice_call_logs c
						WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status)),
						p_end_reason, p_providers) LOOP
					v_ids := v_ids || v_term.outbox_ids;
					v_rows := v_rows || v_term.outbox_rows;
				END LOOP;
				outbox_ids := v_ids; outbox_rows := v_rows;
				cancelled_count := cancelled_count + v_a;
			END IF;
			PERFORM callstop_history(v_batch.tenant_id, 'batch', NULL, v_batch.id, p_force,
			                         cancelled_count, p_route, p_key_id, p_request_id, p_end_reason);
			PERFORM callstop_event(v_batch.tenant_id, 'batch.cancelled', 'batch', v_batch.id::text,
				jsonb_build_object('job_id', v_batch.job_id, 'batch_id', v_batch.id, 'force', p_force,
					'cancelled_count', cancelled_count, 'pending_cancelled', pending_cancelled,
					'active_calls', active_count,
					'cancelled_at', callstop_rfc3339(coalesce(v_batch.cancelled_at, now())))
				|| callstop_event_context());
			RETURN NEXT;
		ELSE
			resource_type := 'call';
			SELECT c.* INTO v_call FROM voice_call_logs c
			WHERE c.id = (SELECT f.id FROM callstop_find_calls(p_tenant_id, p_types[i:i], p_refs[i:i]) f);
			IF NOT FOUND THEN
				outcome := 'not_found'; status := 'not_found';
				RETURN NEXT;
				CONTINUE;
			END IF;
			resource_uuid := v_call.id; tenant_id := v_call.tenant_id;
			livekit_room := v_call.livekit_room; openai_call_id := v_call.openai_call_id;
			status := v_call.status;
			IF NOT callstop_call_is_active(v_call.status) THEN
				outcome := 'terminal';
				RETURN NEXT;
				CONTINUE;
			END IF;
			SELECT t.outbox_ids, t.outbox_rows INTO outbox_ids, outbox_rows
			FROM callstop_terminate_calls(ARRAY[v_call.id], p_end_reason, p_providers) t;
			IF v_call.batch_id IS NOT NULL THEN
				PERFORM callstop_batch_settle(v_call.batch_id);
			END IF;
			outcome := 'cancelled'; status := 'cancelled'; cancelled_count := 1;
			PERFORM callstop_history(v_call.tenant_id, 'call', v_call.id, NULL, p_force, 1,
			                         p_route, p_key_id, p_request_id, p_end_reason);
			RETURN NEXT;
		END IF;
	END LOOP;
END;
$$;
