-- One request of one client against its rate limit (GCRA), decided and recorded at once.
--
-- KEYS[1] the client's bucket: a string holding its theoretical arrival time (TAT), in
--   microseconds of the Redis server's clock (one clock for every instance).
-- ARGV[1] the emission interval in microseconds (the period divided by the count),
-- ARGV[2] the burst: how many requests may arrive at once.
--
-- Returns {1, 0} when allowed (the TAT moved on one interval), {0, retry-after in
-- microseconds} when refused (nothing changed). The same arithmetic as gcra() in
-- store/rate_limits.py.

local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local over = new_tat - now - interval * burst
if over > 0 then
  return {0, over}
end
-- The key lives only while it still holds back a request: a TAT in the past is no TAT.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
