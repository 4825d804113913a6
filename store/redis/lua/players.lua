-- Named players' standings (friends, a party, a clan): one call for up to 100 names.
-- KEYS: ranking, loaded marker, instants hash (read on EARLIEST boards only).
-- ARGV: sign, '1' for EARLIEST (use_board, common.lua), then the usernames (distinct).
-- Returns {0} when not loaded, else {1, player count, username, score, rank, ...} for the
-- named players that have a score, in the order given (the caller sorts).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
use_board(ARGV[1], ARGV[2])
local out = {1, redis.call('ZCARD', KEYS[1])}
for i = 3, #ARGV do
  local member = ARGV[i]
  if EARLIEST then
    local at = redis.call('HGET', KEYS[3], ARGV[i])
    member = at and (at .. ARGV[i]) or nil
  end
  local stored = member and redis.call('ZSCORE', KEYS[1], member)
  if stored then
    local score = score_of(stored)
    out[#out + 1] = ARGV[i]
    out[#out + 1] = score
    if EARLIEST then
      out[#out + 1] = redis.call('ZRANK', KEYS[1], member) + 1
    else
      out[#out + 1] = rank_of(KEYS[1], score)
    end
  end
end
return out
