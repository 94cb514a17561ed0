-- common.lua - shared by the wrk scripts of t/bench/run (loaded with dofile).
--
-- Environment (set by t/bench/run):
--   BENCH_KEY, BENCH_FRONTEND   the unified API headers
--   BENCH_THREADS               wrk -t, so that each thread takes its own
--                               slice of the id list
--   BENCH_IDS                   file with one call id per line (cancel, mixed)
--   BENCH_STATUS_ID             the call whose status is read (mixed)
--   BENCH_LIMIT, BENCH_FLAG     mixed: each thread stops after BENCH_LIMIT
--                               responses and then creates BENCH_FLAG.<tid>,
--                               so that run can SIGINT wrk (whose main thread
--                               otherwise sleeps for the whole -d)

bench = {}

local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local threads = {}
local next_tid = 0

function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
	table.insert(threads, thread)
end

-- Headers of one request: a fresh table each time (wrk.format adds
-- Content-Length to the table it is given).
function bench.headers(body)
	local h = {
		["Host"] = wrk.headers["Host"],
		["X-API-Key"] = os.getenv("BENCH_KEY"),
		["X-Frontend-ID"] = os.getenv("BENCH_FRONTEND"),
	}
	if body then
		h["Content-Type"] = "application/json"
	end
	return h
end

-- This thread's slice of the id list.
function bench.load_ids()
	local ids, i = {}, 0
	local file = os.getenv("BENCH_IDS")
	if file then
		for line in io.lines(file) do
			if i % nthreads == tid then
				ids[#ids + 1] = line
			end
			i = i + 1
		end
	end
	return ids
end

-- Cancel request of the next id; past the end of the slice it starts over
-- (those cancels find terminal calls) and counts a wrap.
wrapped = 0
local pos = 0
function bench.cancel(ids)
	pos = pos + 1
	if pos > #ids then
		pos = 1
		wrapped = wrapped + 1
	end
	local body = '{"resource_id":"' .. ids[pos] .. '","force":false}'
	return wrk.format("POST", "/calls/cancel", bench.headers(body), body)
end

function done(summary, latency, requests)
	local w = 0
	for _, t in ipairs(threads) do
		w = w + (t:get("wrapped") or 0)
	end
	io.write(string.format("BENCH wrapped=%d\n", w))
end
