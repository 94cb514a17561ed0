-- 002_dialer.sql - the dialer contract (SPEC section 5, invariant 2).
--
-- Dialers never write the tables directly; they call these functions, each
-- one transaction.  Every function that touches a batch's entries or calls
-- first locks the batch row (FOR NO KEY UPDATE), the same lock a cancel
-- takes, so a claim or a start is ordered strictly before or after a cancel:
-- once a cancel has returned, callstop_start_call() refuses every entry of
-- that batch.  Lock order everywhere: batch row, then call rows, then entry
-- rows.
--
-- A dialer's loop:
--   SELECT * FROM callstop_claim_entries(batch, 'dialer-7', 10);
--   for each entry:  call_id := callstop_start_call(entry_id, 'dialer-7', agent, room, NULL);
--                    NULL means "do not dial" (batch or entry cancelled).
--                    dial; callstop_report_call(call_id, 'ringing'|'running'|...);
--                    a result of 'cancelled' means "hang up now".
--   on crash before start: callstop_release_entry(entry_id, 'dialer-7').
-- A loader appends entries to a running campaign with callstop_add_entries().

CREATE FUNCTION callstop_uuid_or_null(p text) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE WHEN p ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
		THEN p::uuid END
$$;

CREATE FUNCTION callstop_call_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT p_status IN ('initiated', 'connecting', 'ringing', 'running')
$$;

-- A batch whose entries are all done moves to completed.  The caller holds
-- the batch row lock.
CREATE FUNCTION callstop_batch_settle(p_batch_id uuid) RETURNS void
LANGUAGE sql AS $$
	UPDATE voice_call_batches SET status = 'completed', updated_at = now()
	WHERE id = p_batch_id AND status IN ('pending', 'processing')
	  AND pending_count = 0 AND claimed_count = 0 AND running_count = 0;
$$;

-- Claim up to p_limit pending entries of an active batch for p_worker.
-- Returns no rows when the batch is not active or has nothing pending.
CREATE FUNCTION callstop_claim_entries(p_batch_id uuid, p_worker text, p_limit integer DEFAULT 1)
RETURNS TABLE (entry_id bigint, to_number text)
LANGUAGE plpgsql AS $$
DECLARE
	v_status text;
BEGIN
	SELECT b.status INTO v_status FROM voice_call_batches b
	WHERE b.id = p_batch_id FOR NO KEY UPDATE;
	IF v_status IS NULL OR v_status NOT IN ('pending', 'processing') THEN
		RETURN;
	END IF;
	IF v_status = 'pending' THEN
		UPDATE voice_call_batches SET status = 'processing', updated_at = now() WHERE id = p_batch_id;
	END IF;
	RETURN QUERY
	UPDATE voice_call_batch_entries e
	SET status = 'claimed', claimed_by = p_worker, claimed_at = now(), updated_at = now()
	FROM (SELECT id FROM voice_call_batch_entries
	      WHERE batch_id = p_batch_id AND status = 'pending'
	      ORDER BY id LIMIT p_limit
	      FOR UPDATE SKIP LOCKED) c
	WHERE e.id = c.id
	RETURNING e.id, e.to_number;
	IF NOT FOUND THEN
		PERFORM callstop_batch_settle(p_batch_id);
	END IF;
END;
$$;

-- Start the call of a claimed entry: creates its voice_call_logs row and
-- returns its id, or NULL when the dialer must not dial (the batch is no
-- longer active, or the entry is no longer claimed by p_worker).
CREATE FUNCTION callstop_start_call(p_entry_id bigint, p_worker text, p_agent_id text DEFAULT NULL,
                                    p_livekit_room text DEFAULT NULL, p_openai_call_id text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	v_batch_id uuid;
	v_tenant_id bigint;
	v_batch_status text;
	v_entry voice_call_batch_entries%ROWTYPE;
	v_call_id uuid;
BEGIN
	SELECT batch_id INTO v_batch_id FROM voice_call_batch_entries WHERE id = p_entry_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT status, tenant_id INTO v_batch_status, v_tenant_id FROM voice_call_batches
	WHERE id = v_batch_id FOR NO KEY UPDATE;
	SELECT * INTO v_entry FROM voice_call_batch_entries WHERE id = p_entry_id FOR UPDATE;
	IF v_batch_status NOT IN ('pending', 'processing')
	   OR v_entry.status <> 'claimed' OR v_entry.claimed_by IS DISTINCT FROM p_worker THEN
		RETURN NULL;
	END IF;
	INSERT INTO voice_call_logs (tenant_id, batch_id, batch_entry_id, agent_id, to_number, status,
	                             livekit_room, openai_call_id)
	VALUES (v_tenant_id, v_batch_id, p_entry_id, p_agent_id, v_entry.to_number, 'initiated',
	        p_livekit_room, p_openai_call_id)
	RETURNING id INTO v_call_id;
	UPDATE voice_call_batch_entries SET status = 'running', call_log_id = v_call_id, updated_at = now()
	WHERE id = p_entry_id;
	RETURN v_call_id;
END;
$$;

-- Give a claimed entry back (the dialer could not start it).
CREATE FUNCTION callstop_release_entry(p_entry_id bigint, p_worker text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_batch_id uuid;
BEGIN
	SELECT batch_id INTO v_batch_id FROM voice_call_batch_entries WHERE id = p_entry_id;
	PERFORM 1 FROM voice_call_batches WHERE id = v_batch_id FOR NO KEY UPDATE;
	UPDATE voice_call_batch_entries
	SET status = 'pending', claimed_by = NULL, claimed_at = NULL, updated_at = now()
	WHERE id = p_entry_id AND status = 'claimed' AND claimed_by = p_worker;
	RETURN FOUND;
END;
$$;

-- Report a call's progress or outcome.  Returns the call's status after the
-- report: when it is 'cancelled' (the call was cancelled meanwhile) the
-- dialer must hang up; a report never moves a call out of a terminal state.
-- A terminal outcome also finishes the call's batch entry (completed for
-- completed/ended, cancelled for cancelled, failed otherwise) and settles
-- the batch.  An unknown status is an error (22023).
CREATE FUNCTION callstop_report_call(p_call_id uuid, p_status text, p_end_reason text DEFAULT NULL,
                                     p_livekit_room text DEFAULT NULL, p_openai_call_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_batch_id uuid;
	v_call voice_call_logs%ROWTYPE;
	v_terminal boolean := NOT callstop_call_is_active(p_status);
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('initiated', 'connecting', 'ringing', 'running',
	                                       'completed', 'ended', 'cancelled', 'failed', 'error', 'declined',
	                                       'rejected', 'busy', 'no_answer', 'not_reachable') THEN
		RAISE EXCEPTION 'callstop_report_call: unknown call status %', p_status
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT batch_id INTO v_batch_id FROM voice_call_logs WHERE id = p_call_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF v_batch_id IS NOT NULL THEN
		PERFORM 1 FROM voice_call_batches WHERE id = v_batch_id FOR NO KEY UPDATE;
	END IF;
	SELECT * INTO v_call FROM voice_call_logs WHERE id = p_call_id FOR UPDATE;
	IF NOT callstop_call_is_active(v_call.status) THEN
		RETURN v_call.status;
	END IF;
	UPDATE voice_call_logs SET
		status = p_status,
		livekit_room = coalesce(p_livekit_room, livekit_room),
		openai_call_id = coalesce(p_openai_call_id, openai_call_id),
		started_at = CASE WHEN p_status = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
		ended_at = CASE WHEN v_terminal THEN now() END,
		end_reason = CASE WHEN v_terminal THEN coalesce(p_end_reason, p_status) END,
		updated_at = now()
	WHERE id = p_call_id;
	IF v_terminal AND v_call.batch_entry_id IS NOT NULL THEN
		UPDATE voice_call_batch_entries
		SET status = CASE WHEN p_status IN ('completed', 'ended') THEN 'completed'
		                  WHEN p_status = 'cancelled' THEN 'cancelled' ELSE 'failed' END,
		    updated_at = now()
		WHERE id = v_call.batch_entry_id AND status = 'running';
		PERFORM callstop_batch_settle(v_batch_id);
	END IF;
	RETURN p_status;
END;
$$;

-- Append entries to a batch that is still active (a loader filling a
-- campaign while it runs).  Takes the batch row lock a cancel takes, so an
-- append and a cancel are ordered: entries are never added to a cancelled
-- batch (they would stay pending in it).  Returns the number added; raises
-- 55000 if the batch is not active, P0002 if it does not exist.
CREATE FUNCTION callstop_add_entries(p_batch_id uuid, p_to_numbers text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_status text;
	v_n integer;
BEGIN
	SELECT status INTO v_status FROM voice_call_batches WHERE id = p_batch_id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'callstop_add_entries: no batch %', p_batch_id USING ERRCODE = 'no_data_found';
	END IF;
	IF v_status NOT IN ('pending', 'processing') THEN
		RAISE EXCEPTION 'callstop_add_entries: batch % is %, not active', p_batch_id, v_status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	INSERT INTO voice_call_batch_entries (batch_id, to_number)
	SELECT p_batch_id, n FROM unnest(p_to_numbers) AS n;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END;
$$;
