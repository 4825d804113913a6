-- A player and up to `radius` players directly above and below.
-- KEYS: ranking, loaded marker. ARGV: username, radius.
-- Returns {0} when not loaded, else {1, player count, username, score, rank, ...}
-- ({1, player count} without a score).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local position = redis.call('ZRANK', KEYS[1], ARGV[1])
local out = {1, redis.call('ZCARD', KEYS[1])}
if not position then
  return out
end
local radius = tonumber(ARGV[2])
return append_page(KEYS[1], math.max(0, position - radius), position + radius, out)
