-- cancel_key.lua - cancel.lua with an Idempotency-Key (SPEC 8): each request
-- its own key (BENCH_KEY_PREFIX, the thread and a counter), so that every
-- request runs and stores its answer: the cost of the key, not of a replay.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids
local n = 0
local prefix = os.getenv("BENCH_KEY_PREFIX") or "bench"

function init(args)
	ids = bench.load_ids()
end

function request()
	n = n + 1
	local req = bench.cancel(ids)
	local key = "Idempotency-Key: " .. prefix .. "-" .. tid .. "-" .. n .. "\r\n"
	-- after the request line, before the other headers
	return (req:gsub("\r\n", "\r\n" .. key, 1))
end
