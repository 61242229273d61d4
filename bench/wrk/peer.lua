-- wrk script for the peers (bench/peers): every request a new recipient, JSON results.
--
--   BENCH_KIND=email|mobile BENCH_RECIPIENTS=N BENCH_EXPECT_STATUS=S [BENCH_EXPECT_BODY=text] \
--   BENCH_HEADS=bench/data/cn_mobile_heads.txt \
--       wrk -t 1 -c C -d 10s -s bench/wrk/peer.lua http://127.0.0.1:PORT/path -- OFFSET T
--
-- OFFSET and T as in otp.lua (the number of the first request, wrk's thread
-- count). BENCH_KIND=email: {"email": "u<n mod N>@bench.example"}, the users
-- the harness created (allauth sends codes to accounts only). BENCH_KIND=mobile:
-- {"mobile": "+86<number n>"}, the numbering of otp.lua and bench/phones.py,
-- numbers no user has. An answer counts as "unexpected" unless its status is
-- BENCH_EXPECT_STATUS and its body contains BENCH_EXPECT_BODY (allauth answers
-- a code request with 401 and the pending "login_by_code" flow).

local heads = {}
for line in io.lines(os.getenv("BENCH_HEADS")) do
  if #line > 0 then heads[#heads + 1] = line end
end
local nheads = #heads
local nblocks = nheads * 100

local threads = {}
local counter = 0
unexpected = 0
last_unexpected = ""

function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

local offset, stride
local kind = os.getenv("BENCH_KIND") or "mobile"
local recipients = tonumber(os.getenv("BENCH_RECIPIENTS") or "1000000000")
local expect_status = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "200")
local expect_body = os.getenv("BENCH_EXPECT_BODY") or ""
local headers = { ["Content-Type"] = "application/json" }

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
  local body
  if kind == "email" then
    body = string.format('{"email":"u%d@bench.example"}', n % recipients)
  else
    body = '{"mobile":"+86' .. phone(n) .. '"}'
  end
  return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
  if status ~= expect_status or (expect_body ~= "" and not string.find(body, expect_body, 1, true)) then
    unexpected = unexpected + 1
    last_unexpected = tostring(status) .. " " .. string.sub(body or "", 1, 200)
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("unexpected") or 0)
    local s = thread:get("last_unexpected")
    if s and s ~= "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"non2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"mean_us":%.1f,"max_us":%d,"unexpected":%d,"unexpected_sample":%s}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max, bad, json_string(sample)))
end
