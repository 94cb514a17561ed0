-- 003_cancel.sql - the one cancel core behind every route (SPEC 3.1, 3.3, 4).
--
-- callstop_cancel() runs a whole cancel request as one statement, so it is
-- one transaction and one round trip: all of it happens or none of it.
-- The C side only parses, de-duplicates and words the answer.

-- Cancel the active calls among p_call_ids, their batch entries, and queue
-- one termination_outbox row per thing they had running (SPEC 6).  A
-- provider missing from p_providers gets its row written as failed with
-- last_error saying so.  The caller holds the lock of every batch involved.
-- Returns one row per call it cancelled.
CREATE FUNCTION callstop_terminate_calls(p_call_ids uuid[], p_end_reason text, p_providers text[])
RETURNS TABLE (call_id uuid, livekit_room text, openai_call_id text, outbox_ids bigint[])
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
		RETURNING id, termination_outbox.call_id
	)
	SELECT c.id, c.livekit_room, c.openai_call_id,
		coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.id IS NOT NULL), '{}')
	FROM c LEFT JOIN o ON o.call_id = c.id
	GROUP BY c.id, c.livekit_room, c.openai_call_id
$$;

-- An admin cancel (p_end_reason 'admin_cancel') is made with an admin token.
CREATE FUNCTION callstop_history(p_tenant_id bigint, p_type text, p_call_id uuid, p_batch_id uuid,
                                 p_force boolean, p_count integer, p_route text, p_key_id bigint,
                                 p_request_id text, p_end_reason text) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO cancel_history (tenant_id, resource_type, call_id, batch_id, force, cancelled_count,
	                            route, key_id, key_kind, request_id)
	VALUES (p_tenant_id, p_type, p_call_id, p_batch_id, p_force, p_count, p_route, p_key_id,
	        CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END, p_request_id)
$$;

-- The calls that refs of type 'call' / 'call_or_openai' name, for a tenant
-- (NULL = any tenant).  Not locking.
CREATE FUNCTION callstop_find_calls(p_tenant_id bigint, p_types text[], p_refs text[])
RETURNS TABLE (id uuid, batch_id uuid)
LANGUAGE sql STABLE AS $$
	SELECT c.id, c.batch_id FROM unnest(p_types, p_refs) AS r (type, ref)
	JOIN voice_call_logs c ON c.id = callstop_uuid_or_null(r.ref)
	WHERE r.type IN ('call', 'call_or_openai') AND (p_tenant_id IS NULL OR c.tenant_id = p_tenant_id)
	UNION
	SELECT c.id, c.batch_id FROM unnest(p_types, p_refs) AS r (type, ref)
	JOIN voice_call_logs c ON c.openai_call_id = r.ref
	WHERE r.type = 'call_or_openai' AND (p_tenant_id IS NULL OR c.tenant_id = p_tenant_id)
$$;

-- Cancel a list of resources in order (SPEC 3.1).
--
--   p_tenant_id   the caller's tenant; NULL = any tenant (admin, SPEC 4.3).
--   p_types[i]    'call': p_refs[i] is a call UUID (lower case);
--                 'call_or_openai': a call UUID or an OpenAI call id;
--                 'batch': a job_id ('batch-...') or a batch UUID.
--   p_refs[i]     the ids, distinct, in first-seen order.
--   p_force       also terminate the running calls of the named batches.
--   p_route, p_key_id, p_request_id   written to cancel_history.
--   p_end_reason  end_reason of the calls cancelled ('cancelled', 'admin_cancel').
--   p_providers   the providers callstopd has configured ('livekit', 'openai').
--
-- Returns one row per ref, same order.  outcome:
--   not_found | cancelled | terminal | already_cancelled (batch, force, A > 0)
-- cancelled_count follows SPEC 3.1; pending_cancelled = P; active_count = A
-- (for force: the calls terminated); outbox_ids = the termination_outbox rows
-- written, for the caller to attempt at once after commit.
--
-- Locks: first every batch row the request can touch, in batch id order, then
-- the named calls in id order; a batch's calls are only ever locked by someone
-- holding the batch row (dialers too), so concurrent requests cannot
-- deadlock.  callstopd still retries 40001/40P01.
CREATE FUNCTION callstop_cancel(p_tenant_id bigint, p_types text[], p_refs text[], p_force boolean,
                                p_route text, p_key_id bigint, p_request_id text,
                                p_end_reason text, p_providers text[])
RETURNS TABLE (ord integer, resource_type text, outcome text, status text, cancelled_count integer,
               pending_cancelled integer, active_count integer, resource_uuid uuid, job_id text,
               tenant_id bigint, livekit_room text, openai_call_id text, outbox_ids bigint[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	i integer;
	v_call voice_call_logs%ROWTYPE;
	v_batch voice_call_batches%ROWTYPE;
	v_p integer;
	v_a integer;
	v_ids bigint[];
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
		livekit_room := NULL; openai_call_id := NULL; outbox_ids := '{}';

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
				v_ids := '{}';
				FOR v_term IN SELECT * FROM callstop_terminate_calls(ARRAY(
						SELECT c.id FROM voice_call_logs c
						WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status)),
						p_end_reason, p_providers) LOOP
					v_ids := v_ids || v_term.outbox_ids;
				END LOOP;
				outbox_ids := v_ids;
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
			SELECT t.outbox_ids INTO outbox_ids
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
