-- Shared by every workload script: reading the prepared data and reporting the result.
-- Loaded with dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua").

common = {}

-- The non-empty lines of a file (cookies, pricing ids, paths) prepared by the harness.
function common.lines(path)
   local items = {}
   if path == nil or path == "" then
      return items
   end
   local file = assert(io.open(path, "r"))
   for line in file:lines() do
      if line ~= "" then
         items[#items + 1] = line
      end
   end
   file:close()
   return items
end

-- Each thread starts at a different place in the rotation.
local thread_counter = 0
function setup(thread)
   thread:set("thread_index", thread_counter)
   thread_counter = thread_counter + 1
end

-- One JSON line the harness parses: latencies in microseconds, errors split by kind.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end

return common
