-- 013_local_wake.sql - callstopd wakes its own host's children itself,
-- after its commit, instead of by a NOTIFY inside the transaction (issue 11
-- item 3, issue 14's cost on the cancel path).  Add-only: the three
-- queueing triggers keep their names, tables and firing rules; only what
-- their functions do to wake someone changes.
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

-- 001_schema.sql: rows queued (termination_outbox_notify, AFTER INSERT)
CREATE OR REPLACE FUNCTION callstop_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM callstop_wake('callstop_outbox', TG_OP);
	RETURN NULL;
END;
$$;

-- 009_verify.sql: a row became sent, to be verified (termination_outbox_sent)
CREATE OR REPLACE FUNCTION callstop_outbox_notify_sent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM callstop_wake('callstop_outbox', 'sent');
	RETURN NULL;
END;
$$;

-- 011_webhooks.sql: deliveries queued (webhook_deliveries_notify)
CREATE OR REPLACE FUNCTION callstop_webhook_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM callstop_wake('callstop_webhook', '');
	RETURN NULL;
END;
$$;
