-- 014_webhook_announce.sql - call.cancelled leaves the cancel's path (issue
-- 14: cancel throughput with a webhook endpoint within 15 % of without).
-- Add-only.
--
-- Until now the cancel of a call wrote its call.cancelled event and one
-- delivery row per endpoint in its own transaction (011's callstop_event()):
-- two more rows, seven index entries, two foreign-key checks, a
-- per-resource lock and about 1.5 kB of WAL, a third of a single-call
-- cancel's cost (t/bench/pgbench: 0.68-0.81x the cancel without an
-- endpoint).  The cancel already writes one durable record of what it did:
-- its cancel_history row (invariant 4).  Now that row is the outbox entry:
--
--   * the cancel marks its history row "announce" when an enabled endpoint
--     of the tenant wants call.cancelled (one index probe, paid with or
--     without an endpoint), and wakes the delivery children (callstop_wake());
--   * callstop_webhook_announce(), run by the delivery child before each
--     claim (src/core/webhook.c), turns marked rows into the call.cancelled
--     event and its deliveries, exactly as the cancel wrote them before: the
--     same data (the call's row and the request context kept in the history
--     row), the event's timestamp the cancel's (the history row's "at"), the
--     endpoints that want the type, were added before the cancel and are
--     still enabled when it is published;
--   * callstop_event() publishes a call's marked row first, under the call's
--     lock, before any later event of that call (call.terminated), so that
--     seq still follows the order of the changes.
--
-- Nothing is lost: the mark commits with the cancel, and is cleared only by
-- the transaction that writes the event.  Publishing is exactly once: the
-- call's advisory lock (011's class "WHK1") serialises it, and the row's
-- UPDATE ... WHERE announce finds the mark gone after another publisher's
-- commit.  The batch paths (a batch's force cancel, pause, suppression,
-- cancel-matching) still write their events themselves; they are not the
-- single-call hot path.
--
-- Also (issue 11 item 2), in the callstop_cancel() re-created here: a call
-- outside any batch is cancelled in one statement (its UPDATE, outbox rows
-- and history row in one data-modifying CTE, as t/bench/pgbench's floor),
-- instead of five statements and a call of callstop_cancel_call().

ALTER TABLE cancel_history ADD COLUMN announce boolean NOT NULL DEFAULT false;
-- Only marked rows are in it: the publisher's queue, oldest first.
CREATE INDEX cancel_history_announce_idx ON cancel_history (id) WHERE announce;

-- Whether an enabled endpoint of the tenant, added before p_at, wants
-- events of p_type (011's test in callstop_event()).  plpgsql, so that its
-- plan is cached: a LANGUAGE sql function with a subquery is not inlined,
-- and would be parsed and planned on every cancel.
CREATE FUNCTION callstop_event_wanted(p_tenant_id bigint, p_type text, p_at timestamptz DEFAULT 'infinity')
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM webhook_endpoints e
	               WHERE e.tenant_id = p_tenant_id AND e.state = 'enabled' AND e.created_at <= p_at
	                 AND (e.event_types IS NULL OR p_type = ANY (e.event_types)));
END;
$$;

-- Write one event and its deliveries (011's callstop_event()): the caller
-- holds the resource's advisory lock.  p_at is the time of the change, the
-- event's timestamp (not the publication's); the deliveries go to the
-- tenant's enabled endpoints that want p_type and were added before it (an
-- endpoint added while an announced cancel waited is not sent that cancel;
-- a removed or disabled one is not sent it either, as its deliveries would
-- not have been claimed).  Nothing is written when there is no such endpoint.
CREATE FUNCTION callstop_event_write(p_tenant_id bigint, p_type text, p_resource_type text,
                                     p_resource_id text, p_data jsonb, p_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_seq integer;
	v_id bigint;
BEGIN
	IF NOT callstop_event_wanted(p_tenant_id, p_type, p_at) THEN
		RETURN;
	END IF;
	SELECT coalesce(max(ev.seq), 0) + 1 INTO v_seq FROM webhook_events ev
	WHERE ev.tenant_id = p_tenant_id AND ev.resource_type = p_resource_type
	  AND ev.resource_id = p_resource_id;
	INSERT INTO webhook_events (tenant_id, type, resource_type, resource_id, seq, body)
	VALUES (p_tenant_id, p_type, p_resource_type, p_resource_id, v_seq,
	        json_build_object('type', p_type, 'timestamp', callstop_rfc3339(p_at), 'data', p_data)::text)
	RETURNING id INTO v_id;
	INSERT INTO webhook_deliveries (event_id, endpoint_id, resource_type, resource_id, seq)
	SELECT v_id, e.id, p_resource_type, p_resource_id, v_seq FROM webhook_endpoints e
	WHERE e.tenant_id = p_tenant_id AND e.state = 'enabled' AND e.created_at <= p_at
	  AND (e.event_types IS NULL OR p_type = ANY (e.event_types));
END;
$$;

-- Publish the marked history rows of one call (at most one: a call is
-- cancelled once): its call.cancelled, with 011's data, built from the
-- call's row (terminal now: invariant 1 keeps it as the cancel left it) and
-- the request context the history row kept.  The caller holds the call's
-- advisory lock.  Returns the number of rows published.
CREATE FUNCTION callstop_webhook_announce_call(p_call_id uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	h record;
	n integer := 0;
BEGIN
	FOR h IN UPDATE cancel_history SET announce = false
	         WHERE call_id = p_call_id AND announce
	         RETURNING tenant_id, route, request_id, at LOOP
		PERFORM callstop_event_write(h.tenant_id, 'call.cancelled', 'call', p_call_id::text,
			jsonb_build_object('call_log_id', c.id, 'status', 'cancelled',
				'batch_job_id', (SELECT b.job_id FROM voice_call_batches b WHERE b.id = c.batch_id),
				'end_reason', c.end_reason, 'cancelled_at', callstop_rfc3339(c.ended_at),
				'route', nullif(h.route, ''), 'request_id', nullif(h.request_id, '')),
			h.at)
		FROM voice_call_logs c WHERE c.id = p_call_id;
		n := n + 1;
	END LOOP;
	RETURN n;
END;
$$;

-- The delivery child's step before each claim (src/core/webhook.c): publish
-- up to p_limit marked rows, oldest first.  A call whose lock another
-- transaction holds is left for it (that one publishes it, or the next
-- sweep does), so that two hosts' children never wait on each other.
-- Returns the number published.
CREATE FUNCTION callstop_webhook_announce(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_call uuid;
	n integer := 0;
BEGIN
	FOR v_call IN SELECT h.call_id FROM cancel_history h WHERE h.announce ORDER BY h.id LIMIT p_limit LOOP
		IF pg_try_advisory_xact_lock(1464355633, hashtext('call:' || v_call::text)) THEN
			n := n + callstop_webhook_announce_call(v_call);
		END IF;
	END LOOP;
	RETURN n;
END;
$$;

-- 011's callstop_event(), same signature: the test and the lock, then a
-- call's marked history row first (see above), then the event.
CREATE OR REPLACE FUNCTION callstop_event(p_tenant_id bigint, p_type text, p_resource_type text,
                                          p_resource_id text, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT callstop_event_wanted(p_tenant_id, p_type) THEN
		RETURN;
	END IF;
	PERFORM pg_advisory_xact_lock(1464355633, hashtext(p_resource_type || ':' || p_resource_id));
	IF p_resource_type = 'call' THEN
		PERFORM callstop_webhook_announce_call(p_resource_id::uuid);
	END IF;
	PERFORM callstop_event_write(p_tenant_id, p_type, p_resource_type, p_resource_id, p_data, now());
END;
$$;


-- ---------------------------------------------------------------------------
-- 012's callstop_cancel_call(), same signature and effects but for
-- call.cancelled, which callstop_cancel() now announces through the call's
-- history row (above).
CREATE OR REPLACE FUNCTION callstop_cancel_call(p_call voice_call_logs, p_providers text[],
                                     OUT outbox_ids bigint[], OUT outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
DECLARE
	v_entry_batch uuid;
	v_entry_status text;
BEGIN
	-- Its entry, counted here: the caller holds the batch row, which every
	-- writer of the batch's entries locks first, so the status read is the
	-- one the update changes.
	IF p_call.batch_entry_id IS NOT NULL THEN
		SELECT en.batch_id, en.status INTO v_entry_batch, v_entry_status
		FROM voice_call_batch_entries en WHERE en.id = p_call.batch_entry_id;
		IF v_entry_status IN ('claimed', 'running') THEN
			PERFORM set_config('callstop.entries_counted', 'on', true);
			UPDATE voice_call_batch_entries SET status = 'cancelled', updated_at = now()
			WHERE id = p_call.batch_entry_id;
			PERFORM set_config('callstop.entries_counted', '', true);
		ELSE
			v_entry_batch := NULL;
		END IF;
	END IF;

	WITH o AS (
		INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, last_error,
		                                idempotency_key)
		SELECT p_call.tenant_id, p_call.id, t.provider, t.target,
			CASE WHEN t.provider = ANY (p_providers) THEN 'pending' ELSE 'failed' END,
			CASE WHEN t.provider = ANY (p_providers) THEN NULL ELSE t.label || ' not configured' END,
			CASE WHEN p_call.end_reason = 'admin_cancel' AND t.provider = 'openai'
				THEN 'admin_hangup_' || t.target || '_' || gen_random_uuid()
				ELSE gen_random_uuid()::text END
		FROM (VALUES ('livekit', 'LiveKit', p_call.livekit_room),
		             ('openai', 'OpenAI', p_call.openai_call_id)) AS t (provider, label, target)
		WHERE t.target IS NOT NULL
		RETURNING id, provider
	)
	SELECT coalesce(array_agg(o.id ORDER BY o.id), '{}'),
		coalesce(array_agg(ROW(o.id, o.provider)::callstop_outbox_ref ORDER BY o.id), '{}')
	INTO outbox_ids, outbox_rows FROM o;

	-- The entry's move in the counters (what the trigger would have
	-- applied), and callstop_batch_settle() of the call's batch, in one
	-- UPDATE when both are the same row (always, but for hand-made data).
	IF v_entry_batch IS NOT NULL THEN
		UPDATE voice_call_batches b SET
			claimed_count = b.claimed_count - (v_entry_status = 'claimed')::integer,
			running_count = b.running_count - (v_entry_status = 'running')::integer,
			cancelled_count = b.cancelled_count + 1,
			updated_at = now(),
			status = CASE WHEN b.id = p_call.batch_id AND b.status IN ('pending', 'processing')
			                   AND b.pending_count = 0
			                   AND b.claimed_count - (v_entry_status = 'claimed')::integer = 0
			                   AND b.running_count - (v_entry_status = 'running')::integer = 0
			              THEN 'completed' ELSE b.status END
		WHERE b.id = v_entry_batch;
	END IF;
	IF p_call.batch_id IS NOT NULL AND p_call.batch_id IS DISTINCT FROM v_entry_batch THEN
		PERFORM callstop_batch_settle(p_call.batch_id);
	END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- 012's callstop_cancel(), same signature, results, rows and locks; a call it
-- cancels is announced by its history row (marked when an endpoint wants
-- call.cancelled; the delivery children woken) instead of an event written
-- here.
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
	v_n integer := coalesce(array_length(p_refs, 1), 0);
	v_one boolean;
	v_found boolean;
	v_done boolean;
	v_id uuid;
	v_batch_id uuid;
	v_call voice_call_logs%ROWTYPE;
	v_batch voice_call_batches%ROWTYPE;
	v_p integer;
	v_c integer;
	v_a integer;
	v_ids bigint[];
	v_rows callstop_outbox_ref[];
	v_term record;
	v_announce boolean;
BEGIN
	v_one := v_n = 1 AND p_types[1] IN ('call', 'call_or_openai');
	IF v_one THEN
		-- One call: found without locking, its batch row locked, then the call.
		v_id := callstop_uuid_or_null(p_refs[1]);
		SELECT c.id, c.batch_id INTO v_id, v_batch_id FROM voice_call_logs c
		WHERE c.id = v_id AND (p_tenant_id IS NULL OR c.tenant_id = p_tenant_id);
		IF NOT FOUND AND p_types[1] = 'call_or_openai' THEN
			SELECT c.id, c.batch_id INTO v_id, v_batch_id FROM voice_call_logs c
			WHERE c.openai_call_id = p_refs[1] AND (p_tenant_id IS NULL OR c.tenant_id = p_tenant_id);
		END IF;
		-- The call's own lock is taken by its UPDATE below (an active
		-- one) or not at all (terminal states never change: invariant 1).
		IF v_batch_id IS NOT NULL THEN
			PERFORM 1 FROM voice_call_batches b WHERE b.id = v_batch_id FOR NO KEY UPDATE;
		END IF;
	ELSE
		-- The request's context, for the events it writes (SPEC 9: a
		-- batch's, its force-cancelled calls'); a cancelled call's is in
		-- its history row.
		PERFORM set_config('callstop.route', coalesce(p_route, ''), true),
			set_config('callstop.request_id', coalesce(p_request_id, ''), true);
		-- Lock in a fixed order: every batch the request can touch (named,
		-- or the batch of a named call) by id, then the named calls by id.
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
	END IF;

	FOR i IN 1 .. v_n LOOP
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
				-- Counted here, not by the trigger: pending and claimed
				-- apart, so that each counter moves by what it held.
				PERFORM set_config('callstop.entries_counted', 'on', true);
				UPDATE voice_call_batch_entries SET status = 'cancelled', updated_at = now()
				WHERE batch_id = v_batch.id AND voice_call_batch_entries.status = 'pending';
				GET DIAGNOSTICS v_p = ROW_COUNT;
				UPDATE voice_call_batch_entries SET status = 'cancelled', updated_at = now()
				WHERE batch_id = v_batch.id AND voice_call_batch_entries.status = 'claimed';
				GET DIAGNOSTICS v_c = ROW_COUNT;
				PERFORM set_config('callstop.entries_counted', '', true);
				UPDATE voice_call_batches b SET status = 'cancelled', cancelled_at = now(), updated_at = now(),
					pending_count = b.pending_count - v_p, claimed_count = b.claimed_count - v_c,
					cancelled_count = b.cancelled_count + v_p + v_c
				WHERE b.id = v_batch.id;
				v_p := v_p + v_c;
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
			IF v_one AND v_id IS NOT NULL AND v_batch_id IS NULL THEN
				-- A call outside any batch, active (the common case): its
				-- cancel, outbox rows and history row in one statement, as
				-- callstop_cancel_call() and the history insert below would
				-- write them (nothing to count or settle).  A call that is
				-- not active, or has a batch entry (hand-made data), goes on
				-- below as before.
				WITH c AS (
					UPDATE voice_call_logs c SET status = 'cancelled', ended_at = now(),
						end_reason = p_end_reason, updated_at = now()
					WHERE c.id = v_id AND c.batch_entry_id IS NULL AND callstop_call_is_active(c.status)
					RETURNING c.id, c.tenant_id, c.livekit_room, c.openai_call_id
				), o AS (
					INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, last_error,
					                                idempotency_key)
					SELECT c.tenant_id, c.id, t.provider, t.target,
						CASE WHEN t.provider = ANY (p_providers) THEN 'pending' ELSE 'failed' END,
						CASE WHEN t.provider = ANY (p_providers) THEN NULL ELSE t.label || ' not configured' END,
						CASE WHEN p_end_reason = 'admin_cancel' AND t.provider = 'openai'
							THEN 'admin_hangup_' || t.target || '_' || gen_random_uuid()
							ELSE gen_random_uuid()::text END
					FROM c CROSS JOIN LATERAL (VALUES ('livekit', 'LiveKit', c.livekit_room),
					                                  ('openai', 'OpenAI', c.openai_call_id)) AS t (provider, label, target)
					WHERE t.target IS NOT NULL
					RETURNING id, provider
				), h AS (
					INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route,
					                            key_id, key_kind, request_id, announce)
					SELECT c.tenant_id, 'call', c.id, p_force, 1, p_route, p_key_id,
						CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END,
						p_request_id, callstop_event_wanted(c.tenant_id, 'call.cancelled')
					FROM c
					RETURNING announce
				)
				SELECT c.id, c.tenant_id, c.livekit_room, c.openai_call_id,
					coalesce((SELECT array_agg(o.id ORDER BY o.id) FROM o), '{}'),
					coalesce((SELECT array_agg(ROW(o.id, o.provider)::callstop_outbox_ref ORDER BY o.id) FROM o), '{}'),
					(SELECT h.announce FROM h)
				INTO resource_uuid, tenant_id, livekit_room, openai_call_id, outbox_ids, outbox_rows, v_announce
				FROM c;
				IF FOUND THEN
					outcome := 'cancelled'; status := 'cancelled'; cancelled_count := 1;
					IF v_announce THEN
						PERFORM callstop_wake('callstop_webhook', '');
					END IF;
					RETURN NEXT;
					CONTINUE;
				END IF;
			END IF;
			IF v_one THEN
				v_found := false;
				IF v_id IS NOT NULL THEN
					-- active: cancelled now, under the batch lock taken above
					UPDATE voice_call_logs c SET status = 'cancelled', ended_at = now(),
						end_reason = p_end_reason, updated_at = now()
					WHERE c.id = v_id AND callstop_call_is_active(c.status)
					RETURNING c.* INTO v_call;
					v_found := FOUND;
					v_done := FOUND;
					IF NOT v_found THEN
						SELECT c.* INTO v_call FROM voice_call_logs c WHERE c.id = v_id;
						v_found := FOUND;
					END IF;
				END IF;
			ELSE
				SELECT c.* INTO v_call FROM voice_call_logs c
				WHERE c.id = (SELECT f.id FROM callstop_find_calls(p_tenant_id, p_types[i:i], p_refs[i:i]) f);
				v_found := FOUND;
				v_done := false;
				IF v_found AND callstop_call_is_active(v_call.status) THEN
					UPDATE voice_call_logs c SET status = 'cancelled', ended_at = now(),
						end_reason = p_end_reason, updated_at = now()
					WHERE c.id = v_call.id
					RETURNING c.* INTO v_call;
					v_done := true;
				END IF;
			END IF;
			IF NOT v_found THEN
				outcome := 'not_found'; status := 'not_found';
				RETURN NEXT;
				CONTINUE;
			END IF;
			resource_uuid := v_call.id; tenant_id := v_call.tenant_id;
			livekit_room := v_call.livekit_room; openai_call_id := v_call.openai_call_id;
			status := v_call.status;
			IF NOT v_done THEN
				outcome := 'terminal';
				RETURN NEXT;
				CONTINUE;
			END IF;
			SELECT t.outbox_ids, t.outbox_rows INTO outbox_ids, outbox_rows
			FROM callstop_cancel_call(v_call, p_providers) t;
			outcome := 'cancelled'; status := 'cancelled'; cancelled_count := 1;
			v_announce := callstop_event_wanted(v_call.tenant_id, 'call.cancelled');
			INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route, key_id,
			                            key_kind, request_id, announce)
			VALUES (v_call.tenant_id, 'call', v_call.id, p_force, 1, p_route, p_key_id,
			        CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END, p_request_id,
			        v_announce);
			IF v_announce THEN
				PERFORM callstop_wake('callstop_webhook', '');
			END IF;
			RETURN NEXT;
		END IF;
	END LOOP;
END;
$$;
