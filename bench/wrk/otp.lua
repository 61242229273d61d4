-- wrk script for POST /otp/send and /bench/baseline: every request a distinct
-- mainland mobile number (the numbering of bench/phones.py), JSON results.
--
--   BENCH_THREADS=T [BENCH_RATE=R] wrk -t T -c C -d 10s -s bench/wrk/otp.lua \
--       http://127.0.0.1:PORT/otp/send -- OFFSET T
--
-- OFFSET: number of the first request (keep runs disjoint); T: wrk's thread
-- count (the stride between a thread's numbers). BENCH_RATE: requests/s for
-- the whole run; unset for as fast as the connections go (closed loop). With
-- a rate each thread keeps a fixed timetable and wrk's delay() holds a
-- connection until its slot; latency is measured from the write, so the rate
-- must stay below what the server sustains (the harness uses half the peak).
-- Also BENCH_HEADS (the heads file), BENCH_AUTH (the Authorization header),
-- BENCH_AUTH_SOURCE.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local heads = {}
for line in io.lines(os.getenv("BENCH_HEADS")) do
  if #line > 0 then heads[#heads + 1] = line end
end
local nheads = #heads
local nblocks = nheads * 100

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

local offset, stride
local stride_env = tonumber(os.getenv("BENCH_THREADS") or "1")
local auth = os.getenv("BENCH_AUTH")
local source = os.getenv("BENCH_AUTH_SOURCE") or "MOCK_SMS_OTP_AUTH_SOURCE_ID"
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = auth }

function init(args)
  offset = tonumber(args[1] or "0")
  stride = tonumber(args[2] or "1")
end

local function phone(n)
  local p = n % nblocks
  local suffix = math.floor(n / nblocks) % 10000
  return string.format("%s%02d%04d", heads[(p % nheads) + 1], math.floor(p / nheads), suffix)
end

function request()
  local n = offset + counter * stride + tid
  counter = counter + 1
  local body = '{"usage":"login","phone_number":"' .. phone(n) ..
      '","auth_source_id":"' .. source .. '"}'
  return wrk.format("POST", wrk.path, headers, body)
end

-- wrk decides once, when it loads the script, whether delay() exists; when it
-- does, every request goes through a timer, so closed-loop runs leave it out.
if tonumber(os.getenv("BENCH_RATE") or "0") > 0 then
  local interval = 1000.0 * stride_env / tonumber(os.getenv("BENCH_RATE"))
  local next_slot
  function delay()
    local t = now_ms()
    if next_slot == nil or next_slot < t - 1000 then next_slot = t end
    local wait = next_slot - t
    next_slot = next_slot + interval
    if wait < 0 then return 0 end
    return wait
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"non2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
