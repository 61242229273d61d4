-- Hands counts back: decrements the counters that still exist (an expired one
-- must not come back as -1), as django-redis's own ``decr`` would refuse to.
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
