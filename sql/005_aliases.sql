-- 005_aliases.sql - what the compatibility aliases of SPEC 4 need.

-- The Heppu-style status names (SPEC 4.1), stored so that the list route's
-- status filter is an equality an index can serve.
ALTER TABLE voice_call_logs ADD COLUMN heppu_status text GENERATED ALWAYS AS (
	CASE status
		WHEN 'running' THEN 'active'
		WHEN 'ended' THEN 'completed'
		WHEN 'error' THEN 'failed'
		WHEN 'not_reachable' THEN 'failed'
		WHEN 'declined' THEN 'busy'
		WHEN 'rejected' THEN 'busy'
		ELSE status
	END) STORED;

-- GET /api/v1/calls, newest first, one index per filter combination; the
-- date range is a range on the trailing created_at of each.
CREATE INDEX voice_call_logs_tenant_status_idx
	ON voice_call_logs (tenant_id, heppu_status, created_at DESC, id DESC);
CREATE INDEX voice_call_logs_tenant_agent_idx
	ON voice_call_logs (tenant_id, agent_id, created_at DESC, id DESC);
CREATE INDEX voice_call_logs_tenant_agent_status_idx
	ON voice_call_logs (tenant_id, agent_id, heppu_status, created_at DESC, id DESC);
