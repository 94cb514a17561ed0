-- 013_local_wake.sql - callstopd wakes its own host's children itself,
-- after its commit, instead of by a NOTIFY inside the transaction (issue 11
-- item 3, issue 14's cost on the cancel path).  Add-only: the three
-- queueing triggers keep their names, tables and firing rules; only what
-- they do to wake someone changes.
--
-- Why: PostgreSQL serialises the commits of notifying transactions.  A
-- transaction that issued NOTIFY holds one database-wide lock from its
-- pre-commit until its commit record is flushed (PreCommit_Notify,
-- src/backend/commands/async.c), so cancels that each queue a termination
-- or a webhook delivery flushed one after another (1.00 WAL flush per
-- durable cancel, t/bench/walflush) instead of sharing flushes, and every
-- notification woke every listening backend.
--
-- How: a session that wakes the children of some channels itself names
-- them in the setting callstop.wake_local ("callstop_outbox",
-- "callstop_webhook", comma-separated; callstopd's workers and children set
-- it when they connect, for the children running on their host: see
-- src/common/wake.h).  For those channels callstop_wake() raises a NOTICE
-- with SQLSTATE WK001 and the channel as its message, which callstopd turns
-- into a wake-up once the transaction has committed; for every other
-- session - psql, the dialers, callstopctl, a callstopd whose delivery child
-- is off - it NOTIFYs exactly as before, and the children still LISTEN.  A
-- NOTICE costs no lock and nothing at commit.  Either way a lost wake-up
-- only delays: the children sweep every poll_ms.

CREATE FUNCTION callstop_wake(p_channel text, p_payload text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF p_channel = ANY (string_to_array(current_setting('callstop.wake_local', true), ',')) THEN
		RAISE NOTICE USING MESSAGE = p_channel, ERRCODE = 'WK001';
	ELSE
		PERFORM pg_notify(p_channel, p_payload);
	END IF;
END;
$$;

-- The three queueing triggers of 001, 009 and 011 each had a function of
-- their own that called pg_notify(); they become one function, told its
-- channel and payload by the trigger's arguments (the payload defaults to
-- TG_OP, as 001's was).  Same names, tables, events and conditions, so the
-- same firing order.
CREATE FUNCTION callstop_wake_trigger() RETURNS trigger
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

DROP FUNCTION callstop_outbox_notify(), callstop_outbox_notify_sent(), callstop_webhook_notify();
