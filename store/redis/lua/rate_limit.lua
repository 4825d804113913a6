-- Requests of clients against their rate limits (GCRA), each decided and recorded in turn.
-- One call carries the checks that arrived together (store/redis/coalescing.py); a key may
-- appear more than once, and each of its checks sees the ones before it.
--
-- KEYS[i] the bucket of check i: a string holding its client's theoretical arrival time
--   (TAT), in microseconds of the Redis server's clock (one clock for every instance).
-- ARGV[2i-1] check i's emission interval in microseconds (the period divided by the
--   count), ARGV[2i] its burst: how many requests may arrive at once.
--
-- Returns per check two values: 1, 0 when allowed (the TAT moved on one interval);
-- 0, retry-after in microseconds when refused (nothing changed). The same arithmetic as
-- gcra() in store/rate_limits.py.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + interval
  local over = new_tat - now - interval * burst
  if over > 0 then
    out[2 * i - 1] = 0
    out[2 * i] = over
  else
    -- The key lives only while it still holds back a request: a TAT in the past is no TAT.
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
    out[2 * i - 1] = 1
    out[2 * i] = 0
  end
end
return out
