-- Claims a dead instance (its heartbeat deadline passed): takes it out of the registry and
-- hands its dirty board periods to the one caller that got it (the others get nothing).
-- KEYS: members (sorted set), fenced (hash), the dead instance's dirty hash.
-- ARGV: instance id.
-- Returns {} when it is alive or already claimed, else {1, "board|period"...}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) >= now then
  return {}
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local reply = {1}
for _, period in ipairs(redis.call('HKEYS', KEYS[3])) do
  reply[#reply + 1] = period
end
redis.call('DEL', KEYS[3])
return reply
