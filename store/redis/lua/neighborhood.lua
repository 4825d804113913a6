-- A player and up to `radius` players directly above and below.
-- KEYS: ranking, loaded marker. ARGV: username, radius, fill (1: 2 * radius + 1 players
--   whenever the ranking has that many, the window shifted down at the top and up at the
--   bottom; absent or 0: the window is cut there).
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
local start = position - radius
if ARGV[3] == '1' then
  start = math.min(start, out[2] - (2 * radius + 1))
end
start = math.max(0, start)
local stop = position + radius
if ARGV[3] == '1' then
  stop = start + 2 * radius
end
return append_page(KEYS[1], start, stop, out)
