-- cancel.lua - POST /calls/cancel {"resource_id": "<call>", "force": false},
-- each request a different running call from BENCH_IDS (see common.lua).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids
function init(args)
	ids = bench.load_ids()
end

function request()
	return bench.cancel(ids)
end
