-- One player's standing.
-- KEYS: ranking, loaded marker. ARGV: username.
-- Returns {0} when not loaded, {1} without a score, else {1, score, rank, player count}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local stored = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not stored then
  return {1}
end
local score = score_of(stored)
return {1, score, rank_of(KEYS[1], score), redis.call('ZCARD', KEYS[1])}
