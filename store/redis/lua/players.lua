-- Named players' standings (friends, a party, a clan): one call for up to 100 names.
-- KEYS: ranking, loaded marker. ARGV: usernames (distinct).
-- Returns {0} when not loaded, else {1, player count, username, score, rank, ...} for the
-- named players that have a score, in the order given (the caller sorts).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local out = {1, redis.call('ZCARD', KEYS[1])}
for i = 1, #ARGV do
  local stored = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if stored then
    local score = score_of(stored)
    out[#out + 1] = ARGV[i]
    out[#out + 1] = score
    out[#out + 1] = rank_of(KEYS[1], score)
  end
end
return out
