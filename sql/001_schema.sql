-- 001_schema.sql - the tables callstop shares with the dialers (SPEC section 5).
--
-- Applied by `callstopctl migrate` inside one transaction, recorded in
-- schema_migrations.  States are text with CHECK constraints so that dialers
-- written in any language read them as the SPEC names them.

CREATE TABLE tenants (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name         text NOT NULL UNIQUE CHECK (name <> ''),
	-- Trillet-style workspace id (SPEC 4.2): x-workspace-id must equal it.
	workspace_id text NOT NULL UNIQUE CHECK (workspace_id <> ''),
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- API keys: only the SHA-256 of the key is stored (SPEC section 2).
CREATE TABLE api_keys (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id   bigint NOT NULL REFERENCES tenants(id),
	key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	-- First characters of the key ("csk_AbCd"), so an operator can tell keys apart.
	key_prefix  text NOT NULL,
	frontend_id text NOT NULL CHECK (frontend_id <> ''),
	created_at  timestamptz NOT NULL DEFAULT now(),
	revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- Admin tokens (SPEC 2, 4.3): their own table, only the SHA-256 stored.
CREATE TABLE admin_tokens (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name         text NOT NULL CHECK (name <> ''),
	token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	token_prefix text NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	revoked_at   timestamptz
);

CREATE TABLE voice_call_batches (
	id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id       bigint NOT NULL REFERENCES tenants(id),
	job_id          text NOT NULL CHECK (job_id LIKE 'batch-%'),
	status          text NOT NULL DEFAULT 'pending'
	                CHECK (status IN ('pending', 'processing', 'completed', 'cancelled', 'stopped', 'failed')),
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	cancelled_at    timestamptz,
	-- Counters, kept equal to the counts of the entries by the statement
	-- triggers below (invariant 3).  pending_count excludes claimed entries;
	-- the API reports pending + claimed as "pending".
	total_count     integer NOT NULL DEFAULT 0,
	pending_count   integer NOT NULL DEFAULT 0,
	claimed_count   integer NOT NULL DEFAULT 0,
	running_count   integer NOT NULL DEFAULT 0,
	completed_count integer NOT NULL DEFAULT 0,
	failed_count    integer NOT NULL DEFAULT 0,
	cancelled_count integer NOT NULL DEFAULT 0,
	UNIQUE (tenant_id, job_id)
);

CREATE TABLE voice_call_batch_entries (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	batch_id    uuid NOT NULL REFERENCES voice_call_batches(id),
	to_number   text NOT NULL,
	status      text NOT NULL DEFAULT 'pending'
	            CHECK (status IN ('pending', 'claimed', 'running', 'completed', 'failed', 'cancelled')),
	call_log_id uuid,
	claimed_by  text,
	claimed_at  timestamptz,
	updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Keyset pages of one batch (SPEC 3.2), with and without a status filter;
-- the second also serves claims and set-based cancels of pending entries.
CREATE INDEX voice_call_batch_entries_page_idx ON voice_call_batch_entries (batch_id, id);
CREATE INDEX voice_call_batch_entries_status_idx ON voice_call_batch_entries (batch_id, status, id);

CREATE TABLE voice_call_logs (
	id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id      bigint NOT NULL REFERENCES tenants(id),
	batch_id       uuid REFERENCES voice_call_batches(id),
	batch_entry_id bigint REFERENCES voice_call_batch_entries(id),
	agent_id       text,
	to_number      text NOT NULL,
	status         text NOT NULL DEFAULT 'initiated'
	               CHECK (status IN ('initiated', 'connecting', 'ringing', 'running',
	                                 'completed', 'ended', 'cancelled', 'failed', 'error', 'declined',
	                                 'rejected', 'busy', 'no_answer', 'not_reachable')),
	livekit_room   text,
	openai_call_id text,
	created_at     timestamptz NOT NULL DEFAULT now(),
	started_at     timestamptz,
	ended_at       timestamptz,
	end_reason     text,
	updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_call_logs_tenant_created_idx ON voice_call_logs (tenant_id, created_at DESC, id DESC);
-- The active calls of a batch: what a force cancel terminates.
CREATE INDEX voice_call_logs_batch_active_idx ON voice_call_logs (batch_id)
	WHERE status IN ('initiated', 'connecting', 'ringing', 'running');
CREATE UNIQUE INDEX voice_call_logs_openai_idx ON voice_call_logs (openai_call_id)
	WHERE openai_call_id IS NOT NULL;

ALTER TABLE voice_call_batch_entries
	ADD CONSTRAINT voice_call_batch_entries_call_fk FOREIGN KEY (call_log_id) REFERENCES voice_call_logs(id);

-- Invariant 4: one row per resource that a cancel changed.
CREATE TABLE cancel_history (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id       bigint NOT NULL REFERENCES tenants(id),
	resource_type   text NOT NULL CHECK (resource_type IN ('call', 'batch')),
	call_id         uuid REFERENCES voice_call_logs(id),
	batch_id        uuid REFERENCES voice_call_batches(id),
	action          text NOT NULL DEFAULT 'cancel',
	force           boolean NOT NULL,
	cancelled_count integer NOT NULL,
	route           text NOT NULL,
	-- Who: api_keys.id, or admin_tokens.id for an admin cancel (SPEC 4.3).
	key_id          bigint,
	key_kind        text NOT NULL DEFAULT 'api_key' CHECK (key_kind IN ('api_key', 'admin_token')),
	request_id      text,
	at              timestamptz NOT NULL DEFAULT now(),
	CHECK ((resource_type = 'call') = (call_id IS NOT NULL)),
	CHECK ((resource_type = 'batch') = (batch_id IS NOT NULL))
);
CREATE INDEX cancel_history_batch_idx ON cancel_history (batch_id, at) WHERE batch_id IS NOT NULL;
CREATE INDEX cancel_history_call_idx ON cancel_history (call_id, at) WHERE call_id IS NOT NULL;

-- Termination outbox (SPEC section 6): one row per thing to terminate,
-- written in the transaction that cancels the call.
CREATE TABLE termination_outbox (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id       bigint NOT NULL REFERENCES tenants(id),
	call_id         uuid NOT NULL REFERENCES voice_call_logs(id),
	provider        text NOT NULL CHECK (provider IN ('livekit', 'openai')),
	target          text NOT NULL,      -- LiveKit room name or OpenAI call id
	state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
	attempts        integer NOT NULL DEFAULT 0,
	-- The worker that cancelled the call sends the row at once; the retry
	-- child leaves a new row alone for this grace period, and takes it
	-- after that if the worker died before sending it.
	next_attempt_at timestamptz NOT NULL DEFAULT now() + interval '2 seconds',
	last_error      text,
	-- Chosen once per row and reused by every retry (OpenAI Idempotency-Key).
	idempotency_key text NOT NULL DEFAULT gen_random_uuid()::text,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX termination_outbox_call_idx ON termination_outbox (call_id);
CREATE INDEX termination_outbox_due_idx ON termination_outbox (next_attempt_at) WHERE state = 'pending';
-- The dead letter: counted by /callstop-metrics, listed by callstopctl outbox
-- list --state failed, without reading the done rows.
CREATE INDEX termination_outbox_failed_idx ON termination_outbox (id) WHERE state = 'failed';

-- Wakes the retry child (LISTEN callstop_outbox) when rows are queued or
-- re-queued by an operator (callstopctl outbox retry).
CREATE FUNCTION callstop_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callstop_outbox', TG_OP);
	RETURN NULL;
END;
$$;
CREATE TRIGGER termination_outbox_notify AFTER INSERT ON termination_outbox
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_outbox_notify();

-- A per-installation secret: the key of the HMAC that makes entry cursors
-- opaque and unforgeable (SPEC 3.2: a cursor callstopd did not issue is 400).
CREATE TABLE callstop_secrets (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
INSERT INTO callstop_secrets (name, value)
	VALUES ('cursor_hmac_key', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- ---------------------------------------------------------------------------
-- Invariant 1: nothing leaves a terminal state.  The WHEN clause keeps the
-- trigger function off the hot path of set-based updates of live rows.

CREATE FUNCTION callstop_reject_terminal_exit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% %: status % is terminal and cannot change to %',
		TG_TABLE_NAME, OLD.id, OLD.status, NEW.status
		USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER voice_call_logs_terminal BEFORE UPDATE OF status ON voice_call_logs
	FOR EACH ROW
	WHEN (OLD.status IN ('completed', 'ended', 'cancelled', 'failed', 'error', 'declined',
	                     'rejected', 'busy', 'no_answer', 'not_reachable')
	      AND NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION callstop_reject_terminal_exit();

CREATE TRIGGER voice_call_batches_terminal BEFORE UPDATE OF status ON voice_call_batches
	FOR EACH ROW
	WHEN (OLD.status IN ('completed', 'cancelled', 'stopped', 'failed')
	      AND NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION callstop_reject_terminal_exit();

CREATE TRIGGER voice_call_batch_entries_terminal BEFORE UPDATE OF status ON voice_call_batch_entries
	FOR EACH ROW
	WHEN (OLD.status IN ('completed', 'failed', 'cancelled')
	      AND NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION callstop_reject_terminal_exit();

-- ---------------------------------------------------------------------------
-- Invariant 3: batch counters equal the counts of the entries.  Statement
-- triggers with transition tables apply one aggregated delta per batch, so a
-- set-based cancel of a million entries updates the batch row once, not a
-- million times.

-- One function serves the three events; transition tables need one trigger
-- per event, and dynamic SQL lets each read only the tables it has.
CREATE FUNCTION callstop_count_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	src text := CASE TG_OP
		WHEN 'INSERT' THEN 'SELECT batch_id, status, 1 AS n FROM new_entries'
		WHEN 'DELETE' THEN 'SELECT batch_id, status, -1 AS n FROM old_entries'
		ELSE 'SELECT batch_id, status, 1 AS n FROM new_entries
		      UNION ALL SELECT batch_id, status, -1 AS n FROM old_entries'
	END;
BEGIN
	EXECUTE format($q$
		WITH per_batch AS (
			SELECT batch_id,
				sum(n) AS total,
				coalesce(sum(n) FILTER (WHERE status = 'pending'), 0) AS pending,
				coalesce(sum(n) FILTER (WHERE status = 'claimed'), 0) AS claimed,
				coalesce(sum(n) FILTER (WHERE status = 'running'), 0) AS running,
				coalesce(sum(n) FILTER (WHERE status = 'completed'), 0) AS completed,
				coalesce(sum(n) FILTER (WHERE status = 'failed'), 0) AS failed,
				coalesce(sum(n) FILTER (WHERE status = 'cancelled'), 0) AS cancelled
			FROM (%s) d GROUP BY batch_id
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
		      <> (0, 0, 0, 0, 0, 0, 0)
	$q$, src);
	RETURN NULL;
END;
$$;

CREATE TRIGGER voice_call_batch_entries_count_insert AFTER INSERT ON voice_call_batch_entries
	REFERENCING NEW TABLE AS new_entries
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_count_entries();
CREATE TRIGGER voice_call_batch_entries_count_update AFTER UPDATE ON voice_call_batch_entries
	REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_count_entries();
CREATE TRIGGER voice_call_batch_entries_count_delete AFTER DELETE ON voice_call_batch_entries
	REFERENCING OLD TABLE AS old_entries
	FOR EACH STATEMENT EXECUTE FUNCTION callstop_count_entries();

-- Moving an entry to another batch would break the per-batch counts.
CREATE FUNCTION callstop_reject_entry_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'batch entry %: batch_id cannot change', OLD.id USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER voice_call_batch_entries_no_move BEFORE UPDATE OF batch_id ON voice_call_batch_entries
	FOR EACH ROW WHEN (NEW.batch_id IS DISTINCT FROM OLD.batch_id)
	EXECUTE FUNCTION callstop_reject_entry_move();
