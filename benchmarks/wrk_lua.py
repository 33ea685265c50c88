"""What the wrk scripts of the serving benchmarks share (Lua, as text to join with a request
function): per-thread seed offsets, so that no two threads or runs send the same seed, and one
``RESULT`` line that ``serve_throughput.run_wrk`` reads.

The line also holds the span from the threads' start to the last request sent (microseconds,
LuaJIT's FFI reading the monotonic clock). In a closed loop each client sends its next request
the moment its answer arrives, so the last request sent marks the last answer counted:
requests ÷ span counts whole answers over the time they took, as an in-process loop of model
calls does, whereas requests ÷ wrk's window also counts the end of the window in which the
answers still being computed are lost. For a model whose batch takes 3 s that end is worth
half a batch on average: 16 images of 32, 7% of a 20-second run.

Usage::

    from wrk_lua import LUA_REPORT, LUA_THREADS

    script.write_text(LUA_THREADS + request_function + LUA_REPORT)
"""

LUA_THREADS = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clock_id, wrk_timespec *tp);
]]
local clock = ffi.new("wrk_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end
local threads = {}
local created = 0
local counter = 0
local offset = 0
started_us = 0
last_sent_us = 0
function setup(thread)
  thread:set("thread_id", created)
  created = created + 1
  table.insert(threads, thread)
end
function init(args)
  offset = (thread_id or 0) * 1000000000 + (os.time() % 100000) * 1000
  started_us = now_us()
end
"""
LUA_REPORT = """
local make_request = request
function request()
  last_sent_us = now_us()
  return make_request()
end
function done(summary, latency, requests)
  local e = summary.errors
  local first, last = math.huge, 0
  for _, thread in ipairs(threads) do
    first = math.min(first, thread:get("started_us"))
    last = math.max(last, thread:get("last_sent_us"))
  end
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, math.max(last - first, 0)))
end
"""
