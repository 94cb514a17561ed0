-- 006_contracts.sql - explicit row contracts between callstopd and the cancel
-- core of 003_cancel.sql (issue 9, item 3).
--
-- callstop_cancel() and callstop_terminate_calls() also return, per row, the
-- termination_outbox rows they wrote as (id, provider) pairs: callstopd
-- tells a call which of its targets ended how by the pair's provider, not
-- by the convention that the LiveKit row was written (and so numbered)
-- first.  outbox_ids stays, same ids in the same order, so that a callstopd
-- that predates this file keeps working until it is upgraded.
--
-- Everything else - one statement, the lock order (batches by id, then the
-- named calls by id), the outcomes and counts - is 003's, unchanged.  A new
-- OUT column changes the row type, so both functions are dropped and created
-- again, in the migration's one transaction.

-- One termination_outbox row written by a cancel.
CREATE TYPE callstop_outbox_ref AS (id bigint, provider text);

DROP FUNCTION callstop_cancel(bigint, text[], text[], boolean, text, bigint, text, text, text[]);
DROP FUNCTION callstop_terminate_calls(uuid[], text, text[]);

-- As in 003_cancel.sql; outbox_rows: the (id, provider) pairs of outbox_ids.
CREATE FUNCTION callstop_terminate_calls(p_call_ids uuid[], p_end_reason text, p_providers text[])
RETURNS TABLE (call_id uuid, livekit_room text, openai_call_id text, outbox_ids bigint[],
               outbox_rows callstop_outbox_ref[])
LANGUAGE sql AS $$
	WITH c AS (
		UPDATE voice_call_logs SET status = 'cancelled', ended_at = now(),
			end_reason = p_end_reason, updated_at = now()
		WHERE id = ANY (p_call_ids) AND callstop_call_is_active(status)
		RETURNING id, tenant_id, batch_entry_id, livekit_room, openai_call_id
	), e AS (  -- runs to completion although nothing reads it
		UPDATE voice_call_batch_entries en SET status = 'cancelled', updated_at = now()
		FROM c WHERE en.id = c.batch_entry_id AND en.status IN ('claimed', 'running')
		RETURNING en.id
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
	GROUP BY c.id, c.livekit_room, c.openai_call_id
$$;

-- As in 003_cancel.sql (the parameters are the same); outbox_rows: the
-- (id, provider) pairs of outbox_ids, same order.
CREATE FUNCTION callstop_cancel(p_tenant_id bigint, p_types text[], p_refs text[], p_force boolean,
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

			IF v_batch.status IN ('pending', 'processing') THEN
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
