-- 015_webhook_verdict_targets.sql - call.terminated and
-- call.termination_failed carry the targets as GET /calls/status shows them
-- (SPEC 9: "targets (as in 3.2)", with SPEC 11's verified_at and
-- seconds_to_silence per target; 011_webhooks.sql's function left both
-- out).  Add-only: the same trigger function, re-created; the triggers of
-- 011 call it unchanged.  Now that 009_verify.sql comes before it,
-- verified_at is read directly (011 read it through to_jsonb() so that it
-- compiled without 009).  seconds_to_silence of the call runs from its end
-- (the cancel's commit) to the latest target's verified_at (a target that
-- has none, an OpenAI hangup written before 009, counts from its last
-- update).

CREATE OR REPLACE FUNCTION callstop_webhook_termination() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_targets jsonb;
	v_failed boolean;
	v_secs numeric;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.tenant_id = NEW.tenant_id AND e.state = 'enabled') THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(1464355633, hashtext('call:' || NEW.call_id::text));
	IF EXISTS (SELECT 1 FROM termination_outbox o
	           WHERE o.call_id = NEW.call_id AND o.state NOT IN ('done', 'failed', 'unknown'))
	   OR EXISTS (SELECT 1 FROM webhook_events ev
	              WHERE ev.tenant_id = NEW.tenant_id AND ev.resource_type = 'call'
	                AND ev.resource_id = NEW.call_id::text
	                AND ev.type IN ('call.terminated', 'call.termination_failed')) THEN
		RETURN NULL;
	END IF;
	-- targets as GET /calls/status shows them (SPEC 3.2 with 11's verified_at
	-- and seconds_to_silence: DB_CALL_TARGETS in src/common/statements.c)
	SELECT jsonb_agg(jsonb_build_object('provider', o.provider, 'target', o.target, 'state', o.state,
	                                    'attempts', o.attempts, 'last_error', o.last_error,
	                                    'verified_at', callstop_rfc3339(o.verified_at),
	                                    'seconds_to_silence',
	                                    round(extract(epoch FROM o.verified_at - o.created_at)::numeric, 3))
	                 ORDER BY o.id),
		bool_or(o.state <> 'done'),
		extract(epoch FROM max(coalesce(o.verified_at, o.updated_at))
		                   - (SELECT c.ended_at FROM voice_call_logs c WHERE c.id = NEW.call_id))
	INTO v_targets, v_failed, v_secs
	FROM termination_outbox o WHERE o.call_id = NEW.call_id;
	IF v_failed THEN
		PERFORM callstop_event(NEW.tenant_id, 'call.termination_failed', 'call', NEW.call_id::text,
		                       jsonb_build_object('call_log_id', NEW.call_id, 'targets', v_targets));
	ELSE
		PERFORM callstop_event(NEW.tenant_id, 'call.terminated', 'call', NEW.call_id::text,
		                       jsonb_build_object('call_log_id', NEW.call_id, 'targets', v_targets,
		                                          'seconds_to_silence', round(greatest(v_secs, 0), 3)));
	END IF;
	RETURN NULL;
END;
$$;
