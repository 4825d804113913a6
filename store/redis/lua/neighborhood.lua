-- A player and up to `radius` players directly above and below.
-- KEYS: ranking, loaded marker, and on EARLIEST boards the instants hash. ARGV: username,
-- radius, then on boards other than DESC with shared ranks: sign, '1' for EARLIEST.
-- Returns {0} when not loaded, else {1, username, score, rank, ...} ({1} without a score).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
if ARGV[3] then
  use_board(ARGV[3], ARGV[4])
end
local out = {1}
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
return append_page(KEYS[1], math.max(0, position - radius), position + radius, out)
