-- 010_campaign.sql - campaign control beyond cancel (SPEC 10, 12; issue 15):
-- pause and resume a batch, cancel by filter with a dry run, do-not-call
-- suppression.  Add-only: the paused state joins the CHECK constraint (the
-- terminal-state trigger of 001 lists only terminal states, so it holds as
-- it is), and the dialer functions of 002 are replaced with the same
-- signatures (callstop_cancel() takes a paused batch as active from 012 on).
--
-- Lock order, as everywhere (SPEC 3.1, 002_dialer.sql): batch rows by id,
-- then call rows by id, then entry rows.  Suppression adds one more, last:
-- a transaction-scoped advisory lock per (tenant, number) (numbers share 128
-- per tenant: callstop_number_lock_key()), exclusive for the
-- suppression, shared for callstop_start_call(), so that a start that read
-- the list before a suppression committed cannot commit after it.
--
-- The index builds below lock the tables they index for writes while they
-- run (in the migration's one transaction).

-- Webhooks (SPEC 9) announce changes through this; the no-op stub is
-- replaced by the webhooks migration.  Every caller below runs it in the
-- transaction of the change it announces.
CREATE OR REPLACE FUNCTION callstop_event(p_tenant_id bigint, p_type text, p_resource_type text,
                                          p_resource_id text, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- replaced by the webhooks migration
	NULL;
END;
$$;
COMMENT ON FUNCTION callstop_event(bigint, text, text, text, jsonb) IS 'replaced by the webhooks migration';

-- ---------------------------------------------------------------------------
-- The paused batch state (SPEC 10.1): active, not terminal.

ALTER TABLE voice_call_batches DROP CONSTRAINT voice_call_batches_status_check;
ALTER TABLE voice_call_batches ADD CONSTRAINT voice_call_batches_status_check
	CHECK (status IN ('pending', 'processing', 'paused', 'completed', 'cancelled', 'stopped', 'failed'));
-- What a resume restores: 'processing' if a dialer ever claimed from the
-- batch (the first claim moves pending to processing), else 'pending'.
ALTER TABLE voice_call_batches ADD COLUMN paused_at timestamptz;
ALTER TABLE voice_call_batches ADD COLUMN resume_status text
	CHECK (resume_status IN ('pending', 'processing'));

-- SPEC 10.2: the filter of a cancel_matching row.
ALTER TABLE cancel_history ADD COLUMN filter jsonb;

CREATE FUNCTION callstop_batch_is_active(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT p_status IN ('pending', 'processing', 'paused')
$$;

-- One cancel_history row with an action (callstop_history() writes 'cancel').
CREATE FUNCTION callstop_history_action(p_tenant_id bigint, p_type text, p_call_id uuid, p_batch_id uuid,
                                        p_action text, p_force boolean, p_count integer, p_route text,
                                        p_key_id bigint, p_request_id text, p_filter jsonb) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO cancel_history (tenant_id, resource_type, call_id, batch_id, action, force, cancelled_count,
	                            route, key_id, request_id, filter)
	VALUES (p_tenant_id, p_type, p_call_id, p_batch_id, p_action, p_force, p_count, p_route, p_key_id,
	        p_request_id, p_filter)
$$;

-- The request context the events of this transaction carry (SPEC 9).
CREATE FUNCTION callstop_set_event_context(p_route text, p_request_id text) RETURNS void
LANGUAGE sql AS $$
	SELECT set_config('callstop.route', coalesce(p_route, ''), true),
	       set_config('callstop.request_id', coalesce(p_request_id, ''), true);
$$;

-- ---------------------------------------------------------------------------
-- Do-not-call suppression (SPEC 12): per tenant, E.164.

CREATE TABLE suppressions (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id  bigint NOT NULL REFERENCES tenants(id),
	number     text NOT NULL CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
	reason     text,
	key_id     bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, number)
);
-- Keyset pages of a tenant's list, oldest first.
CREATE INDEX suppressions_page_idx ON suppressions (tenant_id, id);

-- The not-yet-started entries of a number, whatever the batch: suppressing
-- one number among millions of pending entries reads only that number's.
CREATE INDEX voice_call_batch_entries_open_number_idx ON voice_call_batch_entries (to_number)
	WHERE status IN ('pending', 'claimed');
-- A tenant's active calls by number (suppression hangup, cancel by filter),
-- by agent, by creation time (cancel by filter).  Active calls are few
-- beside the ended ones, so these stay small.
CREATE INDEX voice_call_logs_active_number_idx ON voice_call_logs (tenant_id, to_number)
	WHERE status IN ('initiated', 'connecting', 'ringing', 'running');
CREATE INDEX voice_call_logs_active_agent_idx ON voice_call_logs (tenant_id, agent_id, created_at)
	WHERE status IN ('initiated', 'connecting', 'ringing', 'running');
CREATE INDEX voice_call_logs_active_created_idx ON voice_call_logs (tenant_id, created_at)
	WHERE status IN ('initiated', 'connecting', 'ringing', 'running');

CREATE FUNCTION callstop_is_suppressed(p_tenant_id bigint, p_number text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = p_tenant_id AND s.number = p_number)
$$;

-- The advisory lock of (tenant, number): two int4 keys, a space of their own
-- beside callstopctl migrate's one bigint key.  Numbers share 128 locks per
-- tenant, so that a suppression of 100 000 numbers in one transaction takes
-- at most 128 (the lock table holds max_locks_per_transaction x
-- max_connections); a start only waits, at worst, for a suppression of
-- another number of the same tenant to commit.
CREATE FUNCTION callstop_number_lock_key(p_tenant_id bigint, p_number text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT ARRAY[(p_tenant_id % 2147483647)::integer, hashtext(p_number) & 127]
$$;

-- ---------------------------------------------------------------------------
-- The dialer functions of 002, same signatures: a paused batch is refused
-- (invariant 2 for pause), a suppressed number is never claimed or started.

CREATE OR REPLACE FUNCTION callstop_claim_entries(p_batch_id uuid, p_worker text, p_limit integer DEFAULT 1)
RETURNS TABLE (entry_id bigint, to_number text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_status text;
	v_tenant bigint;
	v_seen integer;
	v_ids bigint[];
	v_numbers text[];
	v_claimed integer := 0;
	v_cancelled integer := 0;
BEGIN
	SELECT b.status, b.tenant_id INTO v_status, v_tenant FROM voice_call_batches b
	WHERE b.id = p_batch_id FOR NO KEY UPDATE;
	-- paused: nothing, and the batch stays as it is
	IF v_status IS NULL OR v_status NOT IN ('pending', 'processing') THEN
		RETURN;
	END IF;
	IF v_status = 'pending' THEN
		UPDATE voice_call_batches SET status = 'processing', updated_at = now() WHERE id = p_batch_id;
	END IF;
	-- Entries of suppressed numbers (loaded by INSERT after the number was
	-- suppressed) are cancelled instead of returned; claim on until
	-- something is claimed or nothing is pending.
	LOOP
		WITH c AS (
			SELECT e.id, callstop_is_suppressed(v_tenant, e.to_number) AS sup
			FROM voice_call_batch_entries e
			WHERE e.batch_id = p_batch_id AND e.status = 'pending'
			ORDER BY e.id LIMIT p_limit
			FOR UPDATE OF e SKIP LOCKED
		), u AS (
			UPDATE voice_call_batch_entries e
			SET status = CASE WHEN c.sup THEN 'cancelled' ELSE 'claimed' END,
			    claimed_by = CASE WHEN c.sup THEN e.claimed_by ELSE p_worker END,
			    claimed_at = CASE WHEN c.sup THEN e.claimed_at ELSE now() END,
			    updated_at = now()
			FROM c WHERE e.id = c.id
			RETURNING e.id, e.to_number, c.sup
		)
		SELECT count(*), array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.sup),
		       array_agg(u.to_number ORDER BY u.id) FILTER (WHERE NOT u.sup)
		INTO v_seen, v_ids, v_numbers FROM u;
		v_claimed := coalesce(array_length(v_ids, 1), 0);
		v_cancelled := v_cancelled + v_seen - v_claimed;
		IF v_claimed > 0 THEN
			RETURN QUERY SELECT * FROM unnest(v_ids, v_numbers);
		END IF;
		EXIT WHEN v_claimed > 0 OR v_seen = 0;
	END LOOP;
	IF v_cancelled > 0 THEN
		PERFORM callstop_history_action(v_tenant, 'batch', NULL, p_batch_id, 'suppression', false,
		                                v_cancelled, 'callstop_claim_entries', NULL, NULL, NULL);
	END IF;
	IF v_claimed = 0 THEN
		PERFORM callstop_batch_settle(p_batch_id);
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION callstop_start_call(p_entry_id bigint, p_worker text, p_agent_id text DEFAULT NULL,
                                               p_livekit_room text DEFAULT NULL, p_openai_call_id text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	v_batch_id uuid;
	v_tenant_id bigint;
	v_batch_status text;
	v_entry voice_call_batch_entries%ROWTYPE;
	v_key integer[];
	v_call_id uuid;
BEGIN
	SELECT batch_id INTO v_batch_id FROM voice_call_batch_entries WHERE id = p_entry_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT status, tenant_id INTO v_batch_status, v_tenant_id FROM voice_call_batches
	WHERE id = v_batch_id FOR NO KEY UPDATE;
	SELECT * INTO v_entry FROM voice_call_batch_entries WHERE id = p_entry_id FOR UPDATE;
	IF v_entry.status <> 'claimed' OR v_entry.claimed_by IS DISTINCT FROM p_worker THEN
		RETURN NULL;
	END IF;
	IF v_batch_status = 'paused' THEN
		-- SPEC 10.1: back to pending (a pause releases claims itself; this
		-- is for a batch paused by hand)
		UPDATE voice_call_batch_entries SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
			updated_at = now() WHERE id = p_entry_id;
		RETURN NULL;
	END IF;
	IF v_batch_status NOT IN ('pending', 'processing') THEN
		RETURN NULL;
	END IF;
	-- Wait for a suppression of this number that is committing, then read
	-- the list afresh (a new statement: a new snapshot).
	v_key := callstop_number_lock_key(v_tenant_id, v_entry.to_number);
	PERFORM pg_advisory_xact_lock_shared(v_key[1], v_key[2]);
	IF callstop_is_suppressed(v_tenant_id, v_entry.to_number) THEN
		UPDATE voice_call_batch_entries SET status = 'cancelled', updated_at = now() WHERE id = p_entry_id;
		PERFORM callstop_history_action(v_tenant_id, 'batch', NULL, v_batch_id, 'suppression', false, 1,
		                                'callstop_start_call', NULL, NULL, NULL);
		PERFORM callstop_batch_settle(v_batch_id);
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

-- As in 002, and: a paused batch takes entries too (it is active), and
-- suppressed numbers are skipped; returns the number added.
CREATE OR REPLACE FUNCTION callstop_add_entries(p_batch_id uuid, p_to_numbers text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_status text;
	v_tenant bigint;
	v_n integer;
BEGIN
	SELECT status, tenant_id INTO v_status, v_tenant FROM voice_call_batches WHERE id = p_batch_id
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'callstop_add_entries: no batch %', p_batch_id USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT callstop_batch_is_active(v_status) THEN
		RAISE EXCEPTION 'callstop_add_entries: batch % is %, not active', p_batch_id, v_status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	INSERT INTO voice_call_batch_entries (batch_id, to_number)
	SELECT p_batch_id, n FROM unnest(p_to_numbers) WITH ORDINALITY AS u (n, i)
	WHERE NOT callstop_is_suppressed(v_tenant, n)
	ORDER BY i;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END;
$$;

-- ---------------------------------------------------------------------------
-- A paused batch is active, so a cancel of it works as for a pending or
-- processing one (SPEC 10.1, 3.1): callstop_cancel() says so from
-- 012_cancel_core.sql on, where the cancel core is re-created once with
-- what 010 and 011 add to it (migrations run in one go, in order).

-- ---------------------------------------------------------------------------
-- Pause and resume (SPEC 10.1).
--
-- p_ref is a job_id or a batch UUID of p_tenant_id.  One row:
--   outcome   not_found | terminal | paused | already_paused | resumed | not_paused
--   status    the batch's status after the request
--   released_count     claimed entries given back to pending (pause)
--   terminated_count   active calls cancelled and terminated (pause, p_hangup)
--   active_count       the batch's active calls before the request
--   outbox_rows        the termination_outbox rows written, for the caller
--                      to send at once after commit (SPEC 6)
-- The batch row lock (FOR NO KEY UPDATE, as a claim and a cancel take it)
-- orders a pause strictly before or after every claim and start: once it has
-- committed, callstop_claim_entries() returns nothing and
-- callstop_start_call() NULL for this batch.

CREATE FUNCTION callstop_pause(p_tenant_id bigint, p_ref text, p_hangup boolean, p_route text,
                               p_key_id bigint, p_request_id text, p_providers text[])
RETURNS TABLE (outcome text, batch_id uuid, job_id text, status text, released_count integer,
               terminated_count integer, active_count integer, outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_batch voice_call_batches%ROWTYPE;
	v_term record;
BEGIN
	PERFORM callstop_set_event_context(p_route, p_request_id);
	released_count := 0; terminated_count := 0; active_count := 0; outbox_rows := '{}';
	SELECT b.* INTO v_batch FROM voice_call_batches b
	WHERE b.tenant_id = p_tenant_id AND (b.job_id = p_ref OR b.id = callstop_uuid_or_null(p_ref))
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		outcome := 'not_found';
		RETURN NEXT;
		RETURN;
	END IF;
	batch_id := v_batch.id; job_id := v_batch.job_id; status := v_batch.status;
	SELECT count(*) INTO active_count FROM voice_call_logs c
	WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status);
	IF NOT callstop_batch_is_active(v_batch.status) THEN
		outcome := 'terminal';
	ELSIF v_batch.status = 'paused' THEN
		outcome := 'already_paused';
	ELSE
		UPDATE voice_call_batch_entries e
		SET status = 'pending', claimed_by = NULL, claimed_at = NULL, updated_at = now()
		WHERE e.batch_id = v_batch.id AND e.status = 'claimed';
		GET DIAGNOSTICS released_count = ROW_COUNT;
		UPDATE voice_call_batches b SET status = 'paused', paused_at = now(), resume_status = v_batch.status,
			updated_at = now()
		WHERE b.id = v_batch.id;
		IF p_hangup AND active_count > 0 THEN
			FOR v_term IN SELECT * FROM callstop_terminate_calls(ARRAY(
					SELECT c.id FROM voice_call_logs c
					WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status) ORDER BY c.id),
					'cancelled', p_providers) LOOP
				outbox_rows := outbox_rows || v_term.outbox_rows;
				terminated_count := terminated_count + 1;
			END LOOP;
		END IF;
		PERFORM callstop_history_action(v_batch.tenant_id, 'batch', NULL, v_batch.id, 'pause', p_hangup,
		                                terminated_count, p_route, p_key_id, p_request_id, NULL);
		PERFORM callstop_event(v_batch.tenant_id, 'batch.paused', 'batch', v_batch.id::text,
			jsonb_build_object('job_id', v_batch.job_id, 'batch_id', v_batch.id, 'route', p_route,
			                   'request_id', p_request_id, 'at', callstop_rfc3339(now())));
		outcome := 'paused'; status := 'paused';
	END IF;
	RETURN NEXT;
END;
$$;

CREATE FUNCTION callstop_resume(p_tenant_id bigint, p_ref text, p_route text, p_key_id bigint,
                                p_request_id text)
RETURNS TABLE (outcome text, batch_id uuid, job_id text, status text, released_count integer,
               terminated_count integer, active_count integer, outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_batch voice_call_batches%ROWTYPE;
BEGIN
	PERFORM callstop_set_event_context(p_route, p_request_id);
	released_count := 0; terminated_count := 0; active_count := 0; outbox_rows := '{}';
	SELECT b.* INTO v_batch FROM voice_call_batches b
	WHERE b.tenant_id = p_tenant_id AND (b.job_id = p_ref OR b.id = callstop_uuid_or_null(p_ref))
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		outcome := 'not_found';
		RETURN NEXT;
		RETURN;
	END IF;
	batch_id := v_batch.id; job_id := v_batch.job_id; status := v_batch.status;
	SELECT count(*) INTO active_count FROM voice_call_logs c
	WHERE c.batch_id = v_batch.id AND callstop_call_is_active(c.status);
	IF NOT callstop_batch_is_active(v_batch.status) THEN
		outcome := 'terminal';
	ELSIF v_batch.status <> 'paused' THEN
		outcome := 'not_paused';
	ELSE
		-- processing if a dialer ever claimed from it, else pending
		status := coalesce(v_batch.resume_status, 'processing');
		UPDATE voice_call_batches b SET status = coalesce(v_batch.resume_status, 'processing'), paused_at = NULL, resume_status = NULL,
			updated_at = now()
		WHERE b.id = v_batch.id;
		PERFORM callstop_history_action(v_batch.tenant_id, 'batch', NULL, v_batch.id, 'resume', false, 0,
		                                p_route, p_key_id, p_request_id, NULL);
		PERFORM callstop_event(v_batch.tenant_id, 'batch.resumed', 'batch', v_batch.id::text,
			jsonb_build_object('job_id', v_batch.job_id, 'batch_id', v_batch.id, 'route', p_route,
			                   'request_id', p_request_id, 'at', callstop_rfc3339(now())));
		outcome := 'resumed';
	END IF;
	RETURN NEXT;
END;
$$;

-- ---------------------------------------------------------------------------
-- Suppression (SPEC 12).
--
-- Add p_numbers (E.164, checked by the table's CHECK as well) to the list of
-- p_tenant_id and, in the same transaction, cancel every not-yet-started
-- entry (pending, claimed) of those numbers in the tenant's active batches
-- and, with p_hangup, the tenant's active calls to them (terminated as in
-- SPEC 6).  One history row per batch whose entries were cancelled and one
-- per call, action 'suppression'; one suppression.added event per number
-- added.  One row: added, already_suppressed, entries_cancelled,
-- calls_cancelled, outbox_rows (to send after commit).
CREATE FUNCTION callstop_suppress(p_tenant_id bigint, p_numbers text[], p_reason text, p_hangup boolean,
                                  p_route text, p_key_id bigint, p_request_id text, p_providers text[])
RETURNS TABLE (added integer, already_suppressed integer, entries_cancelled integer, calls_cancelled integer,
               outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_numbers text[];
	v_added text[];
	v_batches uuid[];
	v_calls uuid[] := '{}';
	v_key integer[];
	v_term record;
	v_entry_batches uuid[];
	v_entry_numbers text[];
	v_cancelled_calls uuid[];
BEGIN
	PERFORM callstop_set_event_context(p_route, p_request_id);
	SELECT coalesce(array_agg(DISTINCT n ORDER BY n), '{}') INTO v_numbers FROM unnest(p_numbers) AS n;
	outbox_rows := '{}'; entries_cancelled := 0; calls_cancelled := 0;

	-- The list first, in number order (two suppressions of overlapping
	-- lists wait for each other here, before either holds a batch).
	WITH ins AS (
		INSERT INTO suppressions (tenant_id, number, reason, key_id)
		SELECT p_tenant_id, n, p_reason, p_key_id FROM unnest(v_numbers) AS n ORDER BY n
		ON CONFLICT (tenant_id, number) DO NOTHING
		RETURNING number
	) SELECT coalesce(array_agg(number ORDER BY number), '{}') INTO v_added FROM ins;
	added := coalesce(array_length(v_added, 1), 0);
	already_suppressed := coalesce(array_length(v_numbers, 1), 0) - added;

	-- Then the batches that hold such entries or calls, by id; the calls, by id.
	SELECT coalesce(array_agg(DISTINCT x.batch_id), '{}') INTO v_batches FROM (
		SELECT e.batch_id FROM voice_call_batch_entries e
		JOIN voice_call_batches b ON b.id = e.batch_id
		WHERE e.to_number = ANY (v_numbers) AND e.status IN ('pending', 'claimed')
		  AND b.tenant_id = p_tenant_id AND b.status IN ('pending', 'processing', 'paused')
		UNION ALL
		SELECT c.batch_id FROM voice_call_logs c
		WHERE p_hangup AND c.tenant_id = p_tenant_id AND c.to_number = ANY (v_numbers)
		  AND c.status IN ('initiated', 'connecting', 'ringing', 'running') AND c.batch_id IS NOT NULL) x;
	PERFORM 1 FROM voice_call_batches b WHERE b.id = ANY (v_batches) ORDER BY b.id FOR NO KEY UPDATE;
	IF p_hangup THEN
		SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') INTO v_calls FROM (
			SELECT c.id FROM voice_call_logs c
			WHERE c.tenant_id = p_tenant_id AND c.to_number = ANY (v_numbers)
			  AND c.status IN ('initiated', 'connecting', 'ringing', 'running')
			  AND (c.batch_id IS NULL OR c.batch_id = ANY (v_batches))
			ORDER BY c.id FOR UPDATE) c;
	END IF;
	-- Last, each number's lock: a callstop_start_call() that read the list
	-- before this commits waits here and reads it again.
	FOR v_key IN SELECT DISTINCT callstop_number_lock_key(p_tenant_id, n) k FROM unnest(v_numbers) AS n ORDER BY 1
	LOOP
		PERFORM pg_advisory_xact_lock(v_key[1], v_key[2]);
	END LOOP;

	WITH u AS (
		UPDATE voice_call_batch_entries e SET status = 'cancelled', updated_at = now()
		FROM voice_call_batches b
		WHERE e.to_number = ANY (v_numbers) AND e.status IN ('pending', 'claimed')
		  AND b.id = e.batch_id AND b.id = ANY (v_batches)
		  AND b.status IN ('pending', 'processing', 'paused')
		RETURNING e.batch_id, e.to_number
	) SELECT coalesce(array_agg(u.batch_id), '{}'), coalesce(array_agg(u.to_number), '{}')
	INTO v_entry_batches, v_entry_numbers FROM u;
	entries_cancelled := coalesce(array_length(v_entry_batches, 1), 0);
	PERFORM callstop_history_action(p_tenant_id, 'batch', NULL, x.b, 'suppression', false, count(*)::integer,
	                                p_route, p_key_id, p_request_id, NULL)
	FROM unnest(v_entry_batches) AS x (b) GROUP BY x.b;
	v_cancelled_calls := '{}';
	IF p_hangup AND cardinality(v_calls) > 0 THEN
		FOR v_term IN SELECT * FROM callstop_terminate_calls(v_calls, 'suppressed', p_providers) LOOP
			outbox_rows := outbox_rows || v_term.outbox_rows;
			v_cancelled_calls := v_cancelled_calls || v_term.call_id;
			PERFORM callstop_history_action(p_tenant_id, 'call', v_term.call_id, NULL, 'suppression', true, 1,
			                                p_route, p_key_id, p_request_id, NULL);
		END LOOP;
	END IF;
	calls_cancelled := cardinality(v_cancelled_calls);
	PERFORM callstop_batch_settle(x.b) FROM unnest(v_batches) AS x (b);

	-- SPEC 9: one event per number added, with what it cancelled
	PERFORM callstop_event(p_tenant_id, 'suppression.added', 'suppression', a.n,
		jsonb_build_object('number', a.n, 'entries_cancelled', coalesce(e.k, 0),
		                   'calls_cancelled', coalesce(c.k, 0)))
	FROM unnest(v_added) AS a (n)
	LEFT JOIN (SELECT x.n, count(*) AS k FROM unnest(v_entry_numbers) AS x (n) GROUP BY x.n) e ON e.n = a.n
	LEFT JOIN (SELECT cl.to_number AS n, count(*) AS k FROM voice_call_logs cl
	           WHERE cl.id = ANY (v_cancelled_calls) GROUP BY cl.to_number) c ON c.n = a.n;
	RETURN NEXT;
END;
$$;

-- Remove p_number from the tenant's list; entries it cancelled stay
-- cancelled (SPEC 12).  Returns the number removed, or no row.
CREATE FUNCTION callstop_unsuppress(p_tenant_id bigint, p_number text, p_route text, p_request_id text)
RETURNS TABLE (number text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	PERFORM callstop_set_event_context(p_route, p_request_id);
	RETURN QUERY DELETE FROM suppressions s WHERE s.tenant_id = p_tenant_id AND s.number = p_number
		RETURNING s.number;
END;
$$;

-- ---------------------------------------------------------------------------
-- Cancel by filter (SPEC 10.2).
--
-- p_filter: {"agent_id", "to_number", "batch_job_id", "status": [active
-- states], "created_after", "created_before"} (checked by callstopd: known
-- types, times already RFC 3339), or p_all_active for every active call.
-- Calls match when active and every field given matches.  Entries (with
-- p_include_entries) are the not-yet-started ones of the tenant's active
-- batches, matched by to_number and batch_job_id: a filter with any other
-- field names something an entry does not have, and matches none.
-- p_max bounds matched calls + entries: over it nothing changes (outcome
-- too_many).  p_dry_run counts without locking or changing anything.
--
-- Each query is built for the fields given (EXECUTE, planned with the
-- values), so that each is served by its index: active calls by
-- (tenant, agent_id | to_number | created_at) or a batch's active calls;
-- entries by number or by batch (010, 001).
--
-- One row: outcome (ok | too_many), matched_calls, matched_entries,
-- cancelled_count, calls (JSON, the first 100 by id: call_log_id, status,
-- livekit_room, openai_call_id, outbox [{id, provider}]), outbox_rows (all).
CREATE FUNCTION callstop_match_where(p_filter jsonb, p_all_active boolean, p_entries boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	w text;
BEGIN
	IF p_entries THEN
		-- $1 tenant, $3 to_number, $4 batch_job_id
		IF NOT p_all_active AND (p_filter ?| ARRAY['agent_id', 'status', 'created_after', 'created_before']) THEN
			RETURN NULL;
		END IF;
		w := 'b.tenant_id = $1 AND b.status IN (''pending'', ''processing'', ''paused'')'
			' AND e.status IN (''pending'', ''claimed'')';
		IF p_filter ? 'to_number' THEN w := w || ' AND e.to_number = $3'; END IF;
		IF p_filter ? 'batch_job_id' THEN w := w || ' AND b.job_id = $4'; END IF;
		RETURN w;
	END IF;
	-- $1 tenant, $2 agent_id, $3 to_number, $4 batch_job_id, $5 status[], $6, $7 created range
	w := 'c.tenant_id = $1 AND c.status IN (''initiated'', ''connecting'', ''ringing'', ''running'')';
	IF p_filter ? 'agent_id' THEN w := w || ' AND c.agent_id = $2'; END IF;
	IF p_filter ? 'to_number' THEN w := w || ' AND c.to_number = $3'; END IF;
	IF p_filter ? 'batch_job_id' THEN
		w := w || ' AND c.batch_id = (SELECT b.id FROM voice_call_batches b WHERE b.tenant_id = $1 AND b.job_id = $4)';
	END IF;
	IF p_filter ? 'status' THEN w := w || ' AND c.status = ANY ($5)'; END IF;
	IF p_filter ? 'created_after' THEN w := w || ' AND c.created_at >= $6'; END IF;
	IF p_filter ? 'created_before' THEN w := w || ' AND c.created_at < $7'; END IF;
	RETURN w;
END;
$$;

CREATE FUNCTION callstop_cancel_matching(p_tenant_id bigint, p_filter jsonb, p_all_active boolean,
                                         p_include_entries boolean, p_dry_run boolean, p_max integer,
                                         p_route text, p_key_id bigint, p_request_id text, p_providers text[])
RETURNS TABLE (outcome text, matched_calls integer, matched_entries integer, cancelled_count integer,
               calls jsonb, outbox_rows callstop_outbox_ref[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	f jsonb := CASE WHEN p_all_active THEN '{}' ELSE coalesce(p_filter, '{}') END;
	v_agent text := f->>'agent_id';
	v_number text := f->>'to_number';
	v_job text := f->>'batch_job_id';
	v_status text[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(f->'status', '[]')));
	v_after timestamptz := (f->>'created_after')::timestamptz;
	v_before timestamptz := (f->>'created_before')::timestamptz;
	v_cw text := callstop_match_where(f, p_all_active, false);
	v_ew text := CASE WHEN p_include_entries THEN callstop_match_where(f, p_all_active, true) END;
	v_calls uuid[];
	v_batches uuid[];
	v_entry_batches uuid[];
	v_cancelled uuid[] := '{}';
	v_rows jsonb := '{}';
BEGIN
	PERFORM callstop_set_event_context(p_route, p_request_id);
	outbox_rows := '{}'; cancelled_count := 0; matched_entries := 0;

	-- What matches now, up to p_max + 1 calls (more is too many anyway).
	EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM'
		' (SELECT c.id FROM voice_call_logs c WHERE %s LIMIT $8) m', v_cw)
		INTO v_calls USING p_tenant_id, v_agent, v_number, v_job, v_status, v_after, v_before, p_max + 1;
	matched_calls := cardinality(v_calls);
	IF matched_calls > p_max THEN
		EXECUTE format('SELECT count(*) FROM voice_call_logs c WHERE %s', v_cw) INTO matched_calls
			USING p_tenant_id, v_agent, v_number, v_job, v_status, v_after, v_before;
	END IF;
	IF v_ew IS NOT NULL THEN
		EXECUTE format('SELECT count(*) FROM voice_call_batch_entries e'
			' JOIN voice_call_batches b ON b.id = e.batch_id WHERE %s', v_ew)
			INTO matched_entries USING p_tenant_id, v_agent, v_number, v_job;
	END IF;
	IF matched_calls + matched_entries > p_max THEN
		outcome := 'too_many'; calls := '[]';
		RETURN NEXT;
		RETURN;
	END IF;
	outcome := 'ok';
	IF p_dry_run THEN
		cancelled_count := matched_calls + matched_entries;
		SELECT coalesce(jsonb_agg(jsonb_build_object('call_log_id', c.id, 'status', c.status) ORDER BY c.id), '[]')
		INTO calls FROM voice_call_logs c WHERE c.id = ANY (v_calls[1:100]);
		RETURN NEXT;
		RETURN;
	END IF;

	-- Lock (SPEC 3.1's order): the batches of the matched calls and
	-- entries by id, then the calls by id; then match again under the locks,
	-- in the batches locked (a call started since in another batch began
	-- after this request).
	IF v_ew IS NOT NULL THEN
		EXECUTE format('SELECT coalesce(array_agg(DISTINCT e.batch_id), ''{}'') FROM voice_call_batch_entries e'
			' JOIN voice_call_batches b ON b.id = e.batch_id WHERE %s', v_ew)
			INTO v_entry_batches USING p_tenant_id, v_agent, v_number, v_job;
	END IF;
	SELECT coalesce(array_agg(DISTINCT x.b), '{}') INTO v_batches FROM (
		SELECT c.batch_id AS b FROM voice_call_logs c WHERE c.id = ANY (v_calls) AND c.batch_id IS NOT NULL
		UNION ALL SELECT unnest(v_entry_batches)) x;
	PERFORM 1 FROM voice_call_batches b WHERE b.id = ANY (v_batches) ORDER BY b.id FOR NO KEY UPDATE;
	EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM (SELECT c.id FROM voice_call_logs c'
		' WHERE %s AND (c.batch_id IS NULL OR c.batch_id = ANY ($8)) ORDER BY c.id FOR UPDATE) m', v_cw)
		INTO v_calls USING p_tenant_id, v_agent, v_number, v_job, v_status, v_after, v_before, v_batches;

	-- Set-based: one history row per call, the outbox rows of all, each
	-- call's own by id (a loop appending to arrays and JSON would copy them
	-- once per call).
	WITH t AS (
		SELECT * FROM callstop_terminate_calls(v_calls, 'cancelled', p_providers)
	), h AS (
		INSERT INTO cancel_history (tenant_id, resource_type, call_id, action, force, cancelled_count, route,
		                            key_id, request_id, filter)
		SELECT p_tenant_id, 'call', t.call_id, 'cancel_matching', true, 1, p_route, p_key_id, p_request_id,
		       p_filter
		FROM t
	)
	SELECT coalesce(array_agg(t.call_id ORDER BY t.call_id), '{}'),
	       coalesce(jsonb_object_agg(t.call_id::text, to_jsonb(t.outbox_rows)), '{}'),
	       ARRAY(SELECT o FROM t t2, unnest(t2.outbox_rows) AS o)
	INTO v_cancelled, v_rows, outbox_rows FROM t;
	matched_calls := cardinality(v_cancelled);
	IF v_ew IS NOT NULL THEN
		EXECUTE format('WITH u AS (UPDATE voice_call_batch_entries e SET status = ''cancelled'', updated_at = now()'
			' FROM voice_call_batches b WHERE b.id = e.batch_id AND b.id = ANY ($5) AND %s RETURNING e.batch_id)'
			' SELECT coalesce(array_agg(u.batch_id), ''{}'') FROM u', v_ew)
			INTO v_entry_batches USING p_tenant_id, v_agent, v_number, v_job, v_batches;
		matched_entries := cardinality(v_entry_batches);
		PERFORM callstop_history_action(p_tenant_id, 'batch', NULL, x.b, 'cancel_matching', false,
		                                count(*)::integer, p_route, p_key_id, p_request_id, p_filter)
		FROM unnest(v_entry_batches) AS x (b) GROUP BY x.b;
	END IF;
	PERFORM callstop_batch_settle(x.b) FROM unnest(v_batches) AS x (b);
	cancelled_count := matched_calls + matched_entries;
	SELECT coalesce(jsonb_agg(jsonb_build_object('call_log_id', c.id, 'status', c.status,
		'livekit_room', c.livekit_room, 'openai_call_id', c.openai_call_id,
		'outbox', coalesce(v_rows->(c.id::text), '[]')) ORDER BY c.id), '[]')
	INTO calls FROM voice_call_logs c WHERE c.id = ANY (v_cancelled[1:100]);
	RETURN NEXT;
END;
$$;
