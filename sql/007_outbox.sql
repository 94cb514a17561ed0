-- 007_outbox.sql - the termination outbox after a provider outage (SPEC 6;
-- issue 10, defects 1 and 6).  Add-only.

-- A row on its way out: set by the per-provider claims (next_attempt_at is
-- pushed to the same time, as before, so that no one else takes the row),
-- cleared when its result is recorded.  A row claimed by a process that died
-- keeps it until the claim expires; then it is due again.
ALTER TABLE termination_outbox ADD COLUMN claimed_until timestamptz;

-- After a provider answers again, its rows waiting out their backoff are due
-- now: the first success after an outage pulls them forward instead of each
-- waiting up to outbox.backoff_max_ms.  Rows never tried (the worker that
-- queued them sends them itself) and rows on their way out are left alone.
-- Wakes the retry child.  Returns the number of rows made due.
CREATE FUNCTION callstop_outbox_pull_forward(p_provider text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	UPDATE termination_outbox SET next_attempt_at = now()
	WHERE state = 'pending' AND provider = p_provider AND attempts > 0 AND next_attempt_at > now()
	  AND (claimed_until IS NULL OR claimed_until <= now());
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM pg_notify('callstop_outbox', 'pull_forward');
	END IF;
	RETURN n;
END;
$$;
