-- Asks every instance for a fence, or checks on one asked before: the fence value is the
-- Redis clock in ms, above every earlier one (re-asserted on each check, so a registry
-- lost meanwhile asks again). Instances learn it from their heartbeat reply.
-- KEYS: members (sorted set), fenced (hash), fence, since.
-- ARGV: the fence to check (0: ask for a new one).
-- Returns {the fence, the registry's age ms, ids of live instances that have not passed
-- it..., "", ids of every live instance...}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local asked = tonumber(redis.call('GET', KEYS[3]) or '0')
local fence = tonumber(ARGV[1])
if fence == 0 then
  fence = math.max(now, asked + 1)
end
if fence > asked then
  redis.call('SET', KEYS[3], fence)
end
-- A registry lost with Redis's data begins again now: its age says when every live
-- instance has had time to register again.
redis.call('SET', KEYS[4], now, 'NX')
local since = tonumber(redis.call('GET', KEYS[4]))
local reply = {fence, now - since}
local live = redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')
for _, id in ipairs(live) do
  if tonumber(redis.call('HGET', KEYS[2], id) or '0') < fence then
    reply[#reply + 1] = id
  end
end
reply[#reply + 1] = ''
for _, id in ipairs(live) do
  reply[#reply + 1] = id
end
return reply
