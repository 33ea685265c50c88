"""What the wrk scripts of the serving benchmarks share (Lua, as text to join with a request
function): per-thread seed offsets, so that no two threads or runs send the same seed, and one
``RESULT`` line that ``serve_throughput.run_wrk`` reads.

Usage::

    from wrk_lua import LUA_REPORT, LUA_THREADS

    script.write_text(LUA_THREADS + request_function + LUA_REPORT)
"""

LUA_THREADS = """
local created = 0
local counter = 0
local offset = 0
function setup(thread)
  thread:set("thread_id", created)
  created = created + 1
end
function init(args)
  offset = (thread_id or 0) * 1000000000 + (os.time() % 100000) * 1000
end
"""
LUA_REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
