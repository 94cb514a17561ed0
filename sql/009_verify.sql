-- 009_verify.sql - verified termination (SPEC 11, issue 12).  Add-only.
--
-- A target now goes pending -> sent (the provider accepted the request) ->
-- done (verified gone) | failed (permanent error, SPEC 6) | unknown (still
-- there after every escalation and [outbox] verify_deadline).  The final
-- states are written by plain UPDATEs of state (callstopd's outbox and
-- verifier), done with verified_at set, so that a trigger on this table sees
-- every target reach its end.

ALTER TABLE termination_outbox DROP CONSTRAINT termination_outbox_state_check;
ALTER TABLE termination_outbox ADD CONSTRAINT termination_outbox_state_check
	CHECK (state IN ('pending', 'sent', 'done', 'failed', 'unknown'));

-- sent_at: when the provider accepted the request (the verify deadline runs
-- from it).  verified_at: when the target was seen gone (LiveKit: the
-- read-back; OpenAI, which offers none: its 2xx/404).  seconds_to_silence
-- (SPEC 3.2) is verified_at - created_at, created_at being the cancel's.
ALTER TABLE termination_outbox ADD COLUMN sent_at timestamptz, ADD COLUMN verified_at timestamptz;

-- Existing rows: pending and failed rows are what they were.  A row done
-- before this migration was never verified: it stays done, its sent_at is
-- when it was recorded, and verified_at stays NULL (status shows null
-- verified_at and seconds_to_silence for it, not an invented time).
UPDATE termination_outbox SET sent_at = updated_at WHERE state = 'done' AND sent_at IS NULL;

-- The verifier's claims (the retry child): sent rows by next_attempt_at, as
-- the pending ones; and the unknown rows, listed by callstopctl outbox list
-- --state unknown and counted by /callstop-metrics without reading done rows.
CREATE INDEX termination_outbox_sent_idx ON termination_outbox (next_attempt_at) WHERE state = 'sent';
CREATE INDEX termination_outbox_unknown_idx ON termination_outbox (id) WHERE state = 'unknown';

-- A row that becomes sent wakes the retry child (LISTEN callstop_outbox),
-- which verifies it: the worker that sent it never waits for a phone leg.
-- Notifications with the same payload are merged within a transaction, so a
-- batch of rows wakes it once.
CREATE FUNCTION callstop_outbox_notify_sent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callstop_outbox', 'sent');
	RETURN NULL;
END;
$$;
CREATE TRIGGER termination_outbox_sent AFTER UPDATE OF state ON termination_outbox
	FOR EACH ROW WHEN (NEW.state = 'sent' AND OLD.state IS DISTINCT FROM 'sent')
	EXECUTE FUNCTION callstop_outbox_notify_sent();
