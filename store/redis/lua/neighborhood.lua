-- A player and up to `radius` players directly above and below.
-- KEYS: ranking, loaded marker, and on EARLIEST boards the instants hash. ARGV: username,
-- radius, fill ('1': 2 * radius + 1 players whenever the ranking has that many, the window
-- shifted down at the top and up at the bottom; '0': the window is cut there), then on
-- boards other than DESC with shared ranks: sign, '1' for EARLIEST.
-- Returns {0} when not loaded, else {1, player count, username, score, rank, ...}
-- ({1, player count} without a score).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
if ARGV[4] then
  use_board(ARGV[4], ARGV[5])
end
local out = {1, redis.call('ZCARD', KEYS[1])}
local member = ARGV[1]
if EARLIEST then
  local at = redis.call('HGET', KEYS[3], ARGV[1])
  if not at then
    return out
  end
  member = at .. ARGV[1]
end
local position = redis.call('ZRANK', KEYS[1], member)
if not position then
  return out
end
local radius = tonumber(ARGV[2])
local fill = ARGV[3] == '1'
local start = position - radius
if fill then
  start = math.min(start, out[2] - (2 * radius + 1))
end
start = math.max(0, start)
local stop = position + radius
if fill then
  stop = start + 2 * radius
end
return append_page(KEYS[1], start, stop, out)
