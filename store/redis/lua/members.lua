-- Named players' places in one shard of an EARLIEST board: their members (instant then
-- username) and stored scores, for board-wide ranks counted over every shard (before.lua).
-- KEYS: ranking, loaded marker, instants hash. ARGV: the usernames (distinct).
-- Returns {0} when not loaded, else {1, then member, stored score per named player that
-- has a score, in the order given}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local out = {1}
for i = 1, #ARGV do
  local at = redis.call('HGET', KEYS[3], ARGV[i])
  if at then
    local member = at .. ARGV[i]
    local stored = redis.call('ZSCORE', KEYS[1], member)
    if stored then
      out[#out + 1] = member
      out[#out + 1] = stored
    end
  end
end
return out
