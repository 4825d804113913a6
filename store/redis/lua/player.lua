-- One player's standing.
-- KEYS: ranking, loaded marker, and on EARLIEST boards the instants hash. ARGV: username,
-- then on boards other than DESC with shared ranks: sign, '1' for EARLIEST (common.lua).
-- Returns {0} when not loaded, {1} without a score, else {1, score, rank, player count}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
if ARGV[2] then
  use_board(ARGV[2], ARGV[3])
end
local member = ARGV[1]
if EARLIEST then
  local at = redis.call('HGET', KEYS[3], ARGV[1])
  if not at then
    return {1}
  end
  member = at .. ARGV[1]
end
local stored = redis.call('ZSCORE', KEYS[1], member)
if not stored then
  return {1}
end
local score = score_of(stored)
local count = redis.call('ZCARD', KEYS[1])
if EARLIEST then
  return {1, score, redis.call('ZRANK', KEYS[1], member) + 1, count}
end
return {1, score, rank_of(KEYS[1], score), count}
