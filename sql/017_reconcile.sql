-- 017_reconcile.sql - one schema for every database a release migrated.
-- Add-only.  Number 017 so that every installed database runs it: 016 is
-- taken in some of them.
--
-- callstopctl migrate records a migration by its version number, and two
-- releases shipped different files under the same numbers:
--
--   * stop 19 (commit 5eb8ee0): 001-013, 014_inline_predicates,
--     015_webhook_verdict_targets, 016_webhook_announce, with an 013 whose
--     three wake triggers call one function, callstop_wake_trigger();
--   * stop 20 (commit 4fdf8fa, and this tree): 001-013 as stop 18 shipped
--     them (the changes of the 014 and 015 above are in its 011 and 012, and
--     its 013 gives each wake trigger a function of its own),
--     014_webhook_announce (016 above) and 015_cancel_fast_path.
--
-- So a database at stop 19's version 16 never ran 015_cancel_fast_path (its
-- 15 is recorded), and the wake triggers differ between the two.  Tables,
-- columns, indexes, constraints and every other function are the same
-- (t/F6-migrate-history.t compares them, comments aside).  This file brings
-- either to the same end, and is a no-op in effect where 015 ran:
--
--   * every wake trigger calls callstop_wake_trigger(channel[, payload])
--     (013's callstop_wake(): a NOTICE to this host's callstopd, else
--     NOTIFY), the per-trigger functions go; same names, tables, events and
--     conditions, so the same firing order;
--   * callstop_cancel() is 015's (the one-call fast path, issue 11 item 2),
--     its body unchanged.
--
-- Each trigger is dropped and created again in this one transaction; the
-- ACCESS EXCLUSIVE locks it takes on the three tables are held for
-- milliseconds.

CREATE OR REPLACE FUNCTION callstop_wake_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM callstop_wake(TG_ARGV[0], coalesce(TG_ARGV[1], TG_OP));
	RETURN NULL;
END;
$$;

-- 001_schema.sql: rows queued
DROP TRIGGER termination_outbox_notify ON termination_outbox;
CREATE TRIGGER termination_outbox_notify AFTER INSERT ON termination_outbox
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_wake_trigger('callstop_outbox');

-- 009_verify.sql: a row became sent, to be verified
DROP TRIGGER termination_outbox_sent ON termination_outbox;
CREATE TRIGGER termination_outbox_sent AFTER UPDATE OF state ON termination_outbox
	FOR EACH ROW WHEN (NEW.state = 'sent' AND OLD.state IS DISTINCT FROM 'sent')
	EXECUTE FUNCTION callstop_wake_trigger('callstop_outbox', 'sent');

-- 011_webhooks.sql: deliveries queued
DROP TRIGGER webhook_deliveries_notify ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_wake_trigger('callstop_webhook', '');

-- 015_cancel_fast_path.sql: a history row marked for announcement (014)
-- wakes the delivery children.  Row-level, only for marked rows: an
-- unmarked insert pays the WHEN test alone.
DROP TRIGGER IF EXISTS cancel_history_announce_notify ON cancel_history;
CREATE TRIGGER cancel_history_announce_notify AFTER INSERT ON cancel_history
	FOR EACH ROW WHEN (NEW.announce) EXECUTE FUNCTION callstop_wake_trigger('callstop_webhook', '');

DROP FUNCTION IF EXISTS callstop_outbox_notify(), callstop_outbox_notify_sent(), callstop_webhook_notify();

-- ---------------------------------------------------------------------------
-- 015's callstop_cancel(), unchanged: what it does and what it measured is
-- in 015_cancel_fast_path.sql.
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
	-- One call, active, cancelled by an API key (the common case): its
	-- effects written by one statement, before the general path's set-up.
	-- They are the general path's (invariants 1 to 4): the call cancelled;
	-- for a call of a batch, its claimed or running entry cancelled, the
	-- entry's move in the batch's counters and the batch completed if that
	-- was its last open entry (counted here, not by the counting trigger, as
	-- callstop_cancel_call() does: the entry's status read is the one the
	-- update changes, as every writer of a batch's entries locks the batch
	-- first, and the batch is locked before the call, the lock order below);
	-- an outbox row per target, each with its own Idempotency-Key (the
	-- column's default); the history row, marked when an endpoint wants
	-- call.cancelled (the mark wakes the delivery children: trigger
	-- cancel_history_announce_notify).  Every SELECT in these statements is
	-- free of volatile functions, so that the planner flattens it.  The ref
	-- is taken as callstop_uuid_or_null() takes it (the canonical
	-- 8-4-4-4-12 form, any case), by a cast instead of its regular
	-- expression.  Whatever finds no row here - a call not found, another
	-- tenant's, not active, an OpenAI call id, hand-made batch data - and
	-- an admin cancel (its OpenAI Idempotency-Key differs) take the general
	-- path, which answers as before.
	IF v_n = 1 AND p_types[1] IN ('call', 'call_or_openai') AND p_end_reason IS DISTINCT FROM 'admin_cancel'
	   AND octet_length(p_refs[1]) = 36 THEN
		BEGIN
			v_id := p_refs[1]::uuid;
		EXCEPTION WHEN invalid_text_representation THEN
			v_id := NULL;
		END;
		IF v_id::text = lower(p_refs[1]) THEN
			SELECT c.batch_id INTO v_batch_id FROM voice_call_logs c
			WHERE c.id = v_id AND (p_tenant_id IS NULL OR c.tenant_id = p_tenant_id);
			v_found := FOUND;
			IF v_found AND v_batch_id IS NULL THEN
				RETURN QUERY
				WITH c AS (
					UPDATE voice_call_logs c SET status = 'cancelled', ended_at = now(),
						end_reason = p_end_reason, updated_at = now()
					WHERE c.id = v_id AND c.batch_id IS NULL AND c.batch_entry_id IS NULL
					  AND callstop_call_is_active(c.status)
					RETURNING c.id, c.tenant_id, c.livekit_room, c.openai_call_id
				), o AS (
					INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, last_error)
					SELECT c.tenant_id, c.id, t.provider, t.target,
						CASE WHEN t.provider = ANY (p_providers) THEN 'pending' ELSE 'failed' END,
						CASE WHEN t.provider = ANY (p_providers) THEN NULL ELSE t.label || ' not configured' END
					FROM c CROSS JOIN LATERAL (VALUES ('livekit', 'LiveKit', c.livekit_room),
					                                  ('openai', 'OpenAI', c.openai_call_id)) AS t (provider, label, target)
					WHERE t.target IS NOT NULL
					RETURNING id, provider
				), h AS (
					INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route,
					                            key_id, key_kind, request_id, announce)
					SELECT c.tenant_id, 'call', c.id, p_force, 1, p_route, p_key_id, 'api_key', p_request_id,
						EXISTS (SELECT 1 FROM webhook_endpoints e
						        WHERE e.tenant_id = c.tenant_id AND e.state = 'enabled'
						          AND (e.event_types IS NULL OR 'call.cancelled' = ANY (e.event_types)))
					FROM c
				)
				SELECT 1, 'call'::text, 'cancelled'::text, 'cancelled'::text, 1, 0, 0, c.id, NULL::text, c.tenant_id,
					c.livekit_room, c.openai_call_id, ARRAY(SELECT o.id FROM o ORDER BY o.id),
					ARRAY(SELECT ROW(o.id, o.provider)::callstop_outbox_ref FROM o ORDER BY o.id)
				FROM c;
				IF FOUND THEN
					RETURN;
				END IF;
			ELSIF v_found THEN
				PERFORM 1 FROM voice_call_batches b WHERE b.id = v_batch_id FOR NO KEY UPDATE;
				PERFORM set_config('callstop.entries_counted', 'on', true);
				RETURN QUERY
				WITH c AS (
					UPDATE voice_call_logs c SET status = 'cancelled', ended_at = now(),
						end_reason = p_end_reason, updated_at = now()
					FROM voice_call_batch_entries en
					WHERE c.id = v_id AND c.batch_id = v_batch_id AND callstop_call_is_active(c.status)
					  AND en.id = c.batch_entry_id AND en.batch_id = v_batch_id AND en.status IN ('claimed', 'running')
					RETURNING c.id, c.tenant_id, c.batch_entry_id, c.livekit_room, c.openai_call_id,
						en.status AS entry_was
				), e AS (
					UPDATE voice_call_batch_entries en SET status = 'cancelled', updated_at = now()
					FROM c WHERE en.id = c.batch_entry_id
				), b AS (
					UPDATE voice_call_batches b SET
						claimed_count = b.claimed_count - (c.entry_was = 'claimed')::integer,
						running_count = b.running_count - (c.entry_was = 'running')::integer,
						cancelled_count = b.cancelled_count + 1,
						updated_at = now(),
						status = CASE WHEN b.status IN ('pending', 'processing') AND b.pending_count = 0
						                   AND b.claimed_count - (c.entry_was = 'claimed')::integer = 0
						                   AND b.running_count - (c.entry_was = 'running')::integer = 0
						              THEN 'completed' ELSE b.status END
					FROM c WHERE b.id = v_batch_id
				), o AS (
					INSERT INTO termination_outbox (tenant_id, call_id, provider, target, state, last_error)
					SELECT c.tenant_id, c.id, t.provider, t.target,
						CASE WHEN t.provider = ANY (p_providers) THEN 'pending' ELSE 'failed' END,
						CASE WHEN t.provider = ANY (p_providers) THEN NULL ELSE t.label || ' not configured' END
					FROM c CROSS JOIN LATERAL (VALUES ('livekit', 'LiveKit', c.livekit_room),
					                                  ('openai', 'OpenAI', c.openai_call_id)) AS t (provider, label, target)
					WHERE t.target IS NOT NULL
					RETURNING id, provider
				), h AS (
					INSERT INTO cancel_history (tenant_id, resource_type, call_id, force, cancelled_count, route,
					                            key_id, key_kind, request_id, announce)
					SELECT c.tenant_id, 'call', c.id, p_force, 1, p_route, p_key_id, 'api_key', p_request_id,
						EXISTS (SELECT 1 FROM webhook_endpoints e
						        WHERE e.tenant_id = c.tenant_id AND e.state = 'enabled'
						          AND (e.event_types IS NULL OR 'call.cancelled' = ANY (e.event_types)))
					FROM c
				)
				SELECT 1, 'call'::text, 'cancelled'::text, 'cancelled'::text, 1, 0, 0, c.id, NULL::text, c.tenant_id,
					c.livekit_room, c.openai_call_id, ARRAY(SELECT o.id FROM o ORDER BY o.id),
					ARRAY(SELECT ROW(o.id, o.provider)::callstop_outbox_ref FROM o ORDER BY o.id)
				FROM c;
				v_done := FOUND;
				PERFORM set_config('callstop.entries_counted', '', true);
				IF v_done THEN
					RETURN;
				END IF;
			END IF;
		END IF;
	END IF;

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
			                            key_kind, request_id, announce)
			VALUES (v_call.tenant_id, 'call', v_call.id, p_force, 1, p_route, p_key_id,
			        CASE WHEN p_end_reason = 'admin_cancel' THEN 'admin_token' ELSE 'api_key' END, p_request_id,
			        callstop_event_wanted(v_call.tenant_id, 'call.cancelled'));
			RETURN NEXT;
		END IF;
	END LOOP;
END;
$$;
