-- One instance's heartbeat: (re-)registers it until now + ttl on the Redis clock, records
-- the latest fence it passed, and answers what the instance needs to know.
-- KEYS: members (sorted set), fenced (hash), fence, since.
-- ARGV: instance id, ttl ms, the latest fence it passed (0: none).
-- Returns {the latest fence asked for (0: none), 1 when it was registered before this
-- call else 0, the registry's age ms, live ids..., "", ids past their deadline...}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local since = tonumber(redis.call('GET', KEYS[4]) or '0')
if since == 0 then
  since = now
  redis.call('SET', KEYS[4], now)
end
local known = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  known = 1
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local passed = tonumber(ARGV[3])
if passed > tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') then
  redis.call('HSET', KEYS[2], ARGV[1], passed)
end
local reply = {tonumber(redis.call('GET', KEYS[3]) or '0'), known, now - since}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
  reply[#reply + 1] = id
end
reply[#reply + 1] = ''
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', '(' .. now, 'BYSCORE', 'LIMIT', 0, 16)) do
  reply[#reply + 1] = id
end
return reply
