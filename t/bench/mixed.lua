-- mixed.lua - the RSS run: GET /calls/status/{BENCH_STATUS_ID} and a cancel
-- of the next call of BENCH_IDS, alternately; each thread stops after
-- BENCH_LIMIT responses (see common.lua).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids, n, limit, odd = nil, 0, 0, false
local status_path = "/calls/status/" .. (os.getenv("BENCH_STATUS_ID") or "")

function init(args)
	ids = bench.load_ids()
	limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
end

function request()
	odd = not odd
	if odd then
		return wrk.format("GET", status_path, bench.headers(nil), nil)
	end
	return bench.cancel(ids)
end

function response(status, headers, body)
	n = n + 1
	if limit > 0 and n == limit then
		local f = io.open(os.getenv("BENCH_FLAG") .. "." .. tid, "w")
		if f then
			f:close()
		end
		wrk.thread:stop()
	end
end
