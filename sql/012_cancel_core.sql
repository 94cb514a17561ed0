-- 012_cancel_core.sql - the cancel core at the cost of its effects (issue 11
-- item 2).  Add-only: the same functions, the same signatures, results,
-- rows and locks as 006_contracts.sql's; and the one place where the
-- features of this release reach the core (re-created once, here, not in
-- each migration): a paused batch is active (010, SPEC 10.1), and the core
-- writes call.cancelled and batch.cancelled with the request's context
-- (011, SPEC 9).  What else changes is what each costs.
--
-- Measured with t/bench/pgbench (pgbench against a minimal transaction with
-- the same durable effects), a single-call callstop_cancel() spent most of
-- its backend CPU parsing and planning: LANGUAGE sql functions that are not
-- inlined (callstop_terminate_calls, callstop_history, callstop_batch_settle)
-- are parsed and planned on every call, and the entry-counting trigger of 001
-- ran its query through EXECUTE, planned on every statement.  Here:
--
--   * those helpers become plpgsql, whose statements keep their plans for the
--     life of the backend, and the predicates callstop_uuid_or_null(),
--     callstop_call_is_active(), callstop_batch_is_active() are inlined;
--   * callstop_count_entries() runs static SQL (planned once per trigger);
--   * callstop_cancel() of one call finds it with two index probes instead of
--     the set-based lock queries, and cancels it with plain statements (plans
--     cached), in the same lock order: its batch row, then the call;
--   * the cancel moves the batch counters itself, in the UPDATE of the batch
--     row it holds locked anyway, and tells the counting trigger to leave its
--     own entry updates alone (the transaction-local setting
--     callstop.entries_counted, set around those statements only).  Other
--     writers (dialers, campaign control, anyone's plain SQL) are counted by
--     the trigger as before, so invariant 3 holds whoever writes.

-- ---------------------------------------------------------------------------
-- Invariant 3, as in 001, with static statements (one per event: transition
-- tables differ per trigger, and plpgsql compiles a trigger function once
-- per trigger, so each branch is planned once, when first run).

CREATE OR REPLACE FUNCTION callstop_count_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	-- A cancel that counted its own update (callstop_cancel() below).
	IF current_setting('callstop.entries_counted', true) = 'on' THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		WITH per_batch AS (
			SELECT batch_id, count(*) AS total,
				count(*) FILTER (WHERE status = 'pending') AS pending,
				count(*) FILTER (WHERE status = 'claimed') AS claimed,
				count(*) FILTER (WHERE status = 'running') AS running,
				count(*) FILTER (WHERE status = 'completed') AS completed,
				count(*) FILTER (WHERE status = 'failed') AS failed,
				count(*) FILTER (WHERE status = 'cancelled') AS cancelled
			FROM new_entries GROUP BY batch_id
		)
		UPDATE voice_call_batches b SET
			total_count     = b.total_count     + p.total,
			pending_count   = b.pending_count   + p.pending,
			claimed_count   = b.claimed_count   + p.claimed,
			running_count   = b.running_count   + p.running,
			completed_count = b.completed_count + p.completed,
			failed_count    = b.failed_count    + p.failed,
			cancelled_count = b.cancelled_count + p.cancelled,
			updated_at      = now()
		FROM per_batch p WHERE b.id = p.batch_id;
	ELSIF TG_OP = 'DELETE' THEN
		WITH per_batch AS (
			SELECT batch_id, count(*) AS total,
				count(*) FILTER (WHERE status = 'pending') AS pending,
				count(*) FILTER (WHERE status = 'claimed') AS claimed,
				count(*) FILTER (WHERE status = 'running') AS running,
				count(*) FILTER (WHERE status = 'completed') AS completed,
				count(*) FILTER (WHERE status = 'failed') AS failed,
				count(*) FILTER (WHERE status = 'cancelled') AS cancelled
			FROM old_entries GROUP BY batch_id
		)
		UPDATE voice_call_batches b SET
			total_count     = b.total_count     - p.total,
			pending_count   = b.pending_count   - p.pending,
			claimed_count   = b.claimed_count   - p.claimed,
			running_count   = b.running_count   - p.running,
			completed_count = b.completed_count - p.completed,
			failed_count    = b.failed_count    - p.failed,
			cancelled_count = b.cancelled_count - p.cancelled,
			updated_at      = now()
		FROM per_batch p WHERE b.id = p.batch_id;
	ELSE
		WITH d AS (
			SELECT batch_id, status, 1 AS n FROM new_entries
			UNION ALL SELECT batch_id, status, -1 AS n FROM old_entries
		), per_batch AS (
			SELECT batch_id, sum(n) AS total,
				coalesce(sum(n) FILTER (WHERE status = 'pending'), 0) AS pending,
				coalesce(sum(n) FILTER (WHERE status = 'claimed'), 0) AS claimed,
				coalesce(sum(n) FILTER (WHERE status = 'running'), 0) AS running,
				coalesce(sum(n) FILTER (WHERE status = 'completed'), 0) AS completed,
				coalesce(sum(n) FILTER (WHERE status = 'failed'), 0) AS failed,
				coalesce(sum(n) FILTER (WHERE status = 'cancelled'), 0) AS cancelled
			FROM d GROUP BY batch_id
		)
		UPDATE voice_call_batches b SET
			total_count     = b.total_count     + p.total,
			pending_count   = b.pending_count   + p.pending,
			claimed_count   = b.claimed_count   + p.claimed,
			running_count   = b.running_count   + p.running,
			completed_count = b.completed_count + p.completed,
			failed_count    = b.failed_count    + p.failed,
			cancelled_count = b.cancelled_count + p.cancelled,
			updated_at      = now()
		FROM per_batch p
		WHERE b.id = p.batch_id
		  AND (p.total, p.pending, p.claimed, p.running, p.completed, p.failed, p.cancelled)
		      <> (0, 0, 0, 0, 0, 0, 0);
	END IF;
	RETURN NULL;
END;
$$;

-- ---------------------------------------------------------------------------
-- The predicates of 002 and 010, the same bodies, no longer STRICT: a STRICT
-- SQL function is inlined only if the planner can prove its body strict,
-- which it does not for these (a CASE; an IN list), so every call (the
-- cancel's lookup and its "is it active", the status page's lookup) ran the
-- SQL function executor, which parses and plans the body each time.
-- Inlined, they are part of their caller's plan.  A NULL argument still
-- gives NULL (a CASE of a NULL match; NULL IN (...)).
CREATE OR REPLACE FUNCTION callstop_uuid_or_null(p text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN p ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
		THEN p::uuid END
$$;

CREATE OR REPLACE FUNCTION callstop_call_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT p_status IN ('initiated', 'connecting', 'ringing', 'running')
$$;

CREATE OR REPLACE FUNCTION callstop_batch_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT p_status IN ('pending', 'processing', 'paused')
$$;

-- ---------------------------------------------------------------------------
-- The helpers of 002, 003, 010 and 011, same signatures and bodies, in
-- plpgsql so that their plans are cached.

CREATE OR REPLACE FUNCTION callstop_batch_settle(p_batch_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE voice_call_batches SET status = 'completed', updated_at = now()
	WHERE id = p_batch_id AND status IN ('pending', 'processing')
	  AND pending_count = 0 AND claimed_count = 0 AND running_count = 0;
END;
$$;

CREATE OR REPLACE FUNCTION callstop_history(p_tenant_id bigint, p_type text, p_call_id uuid, p_batch_id uuid,
                                            p_force boolean, p_count integer, p_route text, p_key_id bigint,
                                            p_request_id text, p_end_reason text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cancel_history (tenant_id, resource_type, call_id, batch_id, force, cancelled_count,
	                            route, key_id, key_kind, request_id)
	VALUES (p_tenant_id, p_type, p_call_id, p_batch_id, p_force, p_count, p_route, p_key_id,
	        CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END, p_request_id);
END;
$$;

CREATE OR REPLACE FUNCTION callstop_history_action(p_tenant_id bigint, p_type text, p_call_id uuid,
                                                   p_batch_id uuid, p_action text, p_force boolean,
                                                   p_count integer, p_route text, p_key_id bigint,
                                                   p_request_id text, p_filter jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cancel_history (tenant_id, resource_type, call_id, batch_id, action, force, cancelled_count,
	                            route, key_id, request_id, filter)
	VALUES (p_tenant_id, p_type, p_call_id, p_batch_id, p_action, p_force, p_count, p_route, p_key_id,
	        p_request_id, p_filter);
END;
$$;

-- callstop_terminate_calls() of 006_contracts.sql, the same statement run by
-- plpgsql, with one more step, ev, which announces each call it cancels
-- (SPEC 9; every call cancel goes through here).  ev is read by the final
-- SELECT so that it runs (a plain SELECT in WITH runs only if read); it sees
-- c's RETURNING, so the data is the call as cancelled.
CREATE OR REPLACE FUNCTION callstop_terminate_calls(p_call_ids uuid[], p_end_reason text, p_providers text[])
RETURNS TABLE (call_id uuid, livekit_room text, openai_call_id text, outbox_ids bigint[],
               outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
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
	GROUP BY c.id, c.livekit_room, c.openai_call_id;
END;
$$;

-- ---------------------------------------------------------------------------
-- The rest of the cancel of one call that the caller has just cancelled
-- (p_call: the row as its UPDATE returned it), its batch row locked before
-- the call (the call branch of callstop_cancel()): what
-- callstop_terminate_calls() does for one call, as plain statements, in the
-- same order of effects (the call, its entry, call.cancelled, the outbox
-- rows, whose insert triggers fire after the event), then the batch's
-- counters and settling in one UPDATE of the batch row.  Returns the outbox
-- rows written.
CREATE FUNCTION callstop_cancel_call(p_call voice_call_logs, p_providers text[],
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

	-- call.cancelled (SPEC 9), the data of callstop_terminate_calls(); built only if an endpoint of the
	-- tenant may want it (callstop_event() checks the type).
	IF EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.tenant_id = p_call.tenant_id AND e.state = 'enabled') THEN
		PERFORM callstop_event(p_call.tenant_id, 'call.cancelled', 'call', p_call.id::text,
			jsonb_build_object('call_log_id', p_call.id, 'status', 'cancelled',
				'batch_job_id', (SELECT b.job_id FROM voice_call_batches b WHERE b.id = p_call.batch_id),
				'end_reason', p_call.end_reason, 'cancelled_at', callstop_rfc3339(p_call.ended_at))
			|| callstop_event_context());
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
-- callstop_cancel() as last created in 006_contracts.sql, same signature,
-- results and rows, and: a paused batch is active (SPEC 10.1); the request's
-- route and request_id are set first as transaction-local settings for the
-- events written below it (callstop.route, callstop.request_id); a batch it
-- cancels is announced once (batch.cancelled, SPEC 9).  Two changes of cost:
--
--   * a request of one call ref (the common case: POST /calls/cancel with one
--     id, DELETE /api/v1/calls/{id}, the admin cancel) finds the call with an
--     index probe (by id; for 'call_or_openai' by OpenAI call id when no id
--     matches), locks its batch row, then the call by the UPDATE that
--     cancels it if it is active (a terminal call is only read: its state
--     never changes): the lock order of the general case, without its
--     set-based lock queries;
--   * the batch-cancel of pending and claimed entries moves the batch's
--     counters in the UPDATE that cancels the batch row, and a cancelled
--     call goes through callstop_cancel_call() above.
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
BEGIN
	-- The request's context, for the events of this transaction (SPEC 9).
	PERFORM set_config('callstop.route', coalesce(p_route, ''), true),
		set_config('callstop.request_id', coalesce(p_request_id, ''), true);

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
			INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route, key_id,
			                            key_kind, request_id)
			VALUES (v_call.tenant_id, 'call', v_call.id, p_force, 1, p_route, p_key_id,
			        CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END, p_request_id);
			RETURN NEXT;
		END IF;
	END LOOP;
END;
$$;
