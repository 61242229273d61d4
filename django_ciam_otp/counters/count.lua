-- Counts one send's CountPlan atomically (django_ciam_otp/counters/plan.py has the rules).
--
-- The arguments are written by wire.encode and the answer read by wire.decode,
-- the only Python that knows this layout.
--
-- ARGV[1]: numbers separated by spaces (one argument is cheaper to encode and
-- parse than forty):
--   the number of memos, 1 if their settled keys are sent (else 0), and per
--   memo its kind (1: a sum's total, 2: a distinct count's union of sets), its
--   lifetime and the number of its settled keys sent;
--   the number of limit groups, then per group its phase, its number of rates,
--   1 if it refuses by itself (else 0), and per rate its limit and its key's
--   lifetime;
--   the number of bumps, then per bump its lifetime and 1 if it has an
--   "unless" key (else 0);
--   the marker's lifetime (0: no marker);
--   the number of sums, then per sum 1 if it reads a memo (else 0) and its
--   number of open keys;
--   the number of distinct counts, then per count its lifetime, its cap, 1 if
--   it has an "unless" key (else 0), 1 if it reads a memo (else 0) and its
--   number of open sets;
--   the number of budgets, then per budget its lifetime, 1 if it has a "when"
--   key (else 0), 1 if it has an "unless" key (else 0), its capacity and its
--   refill per second (both may be fractions);
--   1 if a key whose remaining lifetime to read (PTTL) follows (else 0).
-- ARGV[1 + d]: the member of distinct count d.
-- KEYS: the memos, then each memo's settled keys (if sent), then every rate's
-- key (groups in order), each bump's key followed by its "unless" key (if
-- any), the marker (if any), the open keys of each sum, per distinct count the
-- set to add to, its "unless" key (if any) and its open sets, then per budget
-- its key followed by its "when" and "unless" keys (those it has), then the
-- key whose lifetime to read (if any). The sums
-- and distinct counts that read a memo take the memos in order.
--
-- A memo holds what its settled keys add up to (a sum: a number; a distinct
-- count: the union of its sets, plus the member "\0", which no prefix or hash
-- is, so that an empty union still exists). Memos are made first, before any
-- limit is looked at: a refused send makes them too. Building a set memo is one
-- SUNIONSTORE of the settled sets, once per bucket (the day's: once an hour).
-- Without the settled keys, a missing memo stops the script before it writes
-- anything: the answer is {-1} and the caller sends the plan again with them.
--
-- Answer: the refusing group (its position, 0: none) and every rate's count
-- (after counting it, or as found when its phase refused); then, when nothing
-- refused, for each bump with an "unless" key whether it was bumped (1) or
-- skipped (0), whether the marker was there (1 when there is no marker), each
-- sum, each distinct count, and per budget 1 (a token taken), 0 (empty,
-- nothing taken) or -1 (not applied), and the PTTL of the key whose lifetime
-- was asked for (if any: milliseconds, -2 missing, -1 no expiry).
local spec, a = {}, 1
for v in string.gmatch(ARGV[1], '%S+') do spec[#spec + 1] = tonumber(v) end
local function arg() local v = spec[a]; a = a + 1; return v end

local function plain(key) return tonumber(redis.call('GET', key) or '0') or 0 end

-- The memos first: all present, or made from the settled keys sent with them.
local memos, settled_sent = arg(), arg()
local at = memos
for i = 1, memos do
  local kind, ttl, n = arg(), arg(), arg()
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 0 then
    if settled_sent == 0 then return {-1} end
    if kind == 1 then
      local total = 0
      for j = at + 1, at + n do total = total + plain(KEYS[j]) end
      redis.call('SET', key, total, 'EX', ttl)
    else
      if n > 0 then redis.call('SUNIONSTORE', key, unpack(KEYS, at + 1, at + n)) end
      redis.call('SADD', key, '\0')
      redis.call('EXPIRE', key, ttl)
    end
  end
  at = at + n
end
local m = 0
local function memo() m = m + 1; return KEYS[m] end
-- The plan's own keys, after the memos and the settled keys.
local K = {}
for i = at + 1, #KEYS do K[#K + 1] = KEYS[i] end

local groups, k = {}, 0
for g = 1, arg() do
  local phase, n, forced = arg(), arg(), arg()
  local rates = {}
  for r = 1, n do k = k + 1; rates[r] = {k, arg(), arg()} end
  groups[g] = {phase, forced, rates}
end
local counts = {}
for i = 1, k do counts[i] = 0 end

-- Phase by phase: look at every group of the phase; the first that is full
-- refuses and nothing of the phase is counted; else count the whole phase.
local refused, g = 0, 1
while g <= #groups and refused == 0 do
  local last = g
  while last < #groups and groups[last + 1][1] == groups[g][1] do last = last + 1 end
  for h = g, last do
    local full = groups[h][2] == 1
    for _, rate in ipairs(groups[h][3]) do
      local c = tonumber(redis.call('GET', K[rate[1]]) or '0') or 0
      counts[rate[1]] = c
      if c >= rate[2] then full = true end
    end
    if full then refused = h; break end
  end
  if refused == 0 then
    for h = g, last do
      for _, rate in ipairs(groups[h][3]) do
        local c = redis.call('INCR', K[rate[1]])
        if c == 1 then redis.call('EXPIRE', K[rate[1]], rate[3]) end
        counts[rate[1]] = c
      end
    end
  end
  g = last + 1
end
local result = {refused}
for i = 1, k do result[i + 1] = counts[i] end
if refused ~= 0 then return result end

for _ = 1, arg() do
  k = k + 1
  local key, ttl, unless = K[k], arg(), arg()
  local skip = false
  if unless == 1 then
    k = k + 1
    skip = redis.call('EXISTS', K[k]) == 1
    result[#result + 1] = skip and 0 or 1
  end
  if not skip and redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ttl) end
end

local marker_ttl = arg()
if marker_ttl > 0 then
  k = k + 1
  result[#result + 1] = redis.call('EXISTS', K[k])
  redis.call('SET', K[k], '1', 'EX', marker_ttl)
else
  result[#result + 1] = 1
end

for _ = 1, arg() do
  local has_memo, n = arg(), arg()
  local total = 0
  if has_memo == 1 then total = tonumber(redis.call('GET', memo())) or 0 end
  for _ = 1, n do
    k = k + 1
    total = total + plain(K[k])
  end
  result[#result + 1] = total
end

for d = 1, arg() do
  local ttl, cap, has_unless, has_memo, n = arg(), arg(), arg(), arg(), arg()
  k = k + 1
  local target, member = K[k], ARGV[1 + d]
  local seen, count = false, 0
  if has_unless == 1 then
    k = k + 1
    seen = redis.call('EXISTS', K[k]) == 1  -- not counted: as if already in
  end
  if has_memo == 1 then
    local key = memo()
    if redis.call('SISMEMBER', key, member) == 1 then seen = true end
    count = count + redis.call('SCARD', key) - 1
  end
  for _ = 1, n do
    k = k + 1
    if redis.call('SISMEMBER', K[k], member) == 1 then seen = true end
    count = count + redis.call('SCARD', K[k])
  end
  if not seen then
    if count < cap then
      redis.call('SADD', target, member)
      redis.call('EXPIRE', target, ttl)
    end
    count = count + 1
  end
  result[#result + 1] = count
end

-- Token buckets, on the server's clock (TIME is allowed before writes since
-- Redis 5 replicates a script's effects), asked once and only when needed.
local now
for _ = 1, arg() do
  local ttl, has_when, has_unless, capacity, per_second = arg(), arg(), arg(), arg(), arg()
  k = k + 1
  local key, applies = K[k], true
  if has_when == 1 then
    k = k + 1
    if redis.call('EXISTS', K[k]) == 0 then applies = false end
  end
  if has_unless == 1 then
    k = k + 1
    if redis.call('EXISTS', K[k]) == 1 then applies = false end
  end
  if not applies then
    result[#result + 1] = -1
  else
    if now == nil then
      local time = redis.call('TIME')
      now = tonumber(time[1]) + tonumber(time[2]) / 1000000
    end
    local state = redis.call('HMGET', key, 'tokens', 'at')
    local tokens, at = tonumber(state[1]), tonumber(state[2])
    if tokens == nil or at == nil then
      tokens = capacity  -- a new bucket starts full
    else
      tokens = math.min(capacity, tokens + math.max(0, now - at) * per_second)
    end
    local taken = 0
    if tokens >= 1 then tokens = tokens - 1; taken = 1 end
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens),
      'at', string.format('%.17g', now))
    redis.call('EXPIRE', key, ttl)
    result[#result + 1] = taken
  end
end

-- Read last, after every write: the outbox's wake-up flag (outbox.flag_lasts_until).
if arg() == 1 then
  k = k + 1
  result[#result + 1] = redis.call('PTTL', K[k])
end
return result
