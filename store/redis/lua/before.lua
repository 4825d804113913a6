-- How many of one shard's players come strictly before each of some places in the order:
-- a sharded EARLIEST board's rank of a place is 1 + these counts summed over its shards.
-- A place is an order key (stored score, member); members are compared as bytes, as
-- Redis orders them, so the count is exact whether or not the place's member is here.
-- KEYS: ranking, loaded marker. ARGV: pairs of stored score, member.
-- Returns {0} when not loaded, else {1, players in this shard, then per place the count}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local ranking = KEYS[1]

local out = {1, redis.call('ZCARD', ranking)}
for i = 1, #ARGV, 2 do
  local stored, member = ARGV[i], ARGV[i + 1]
  local better = redis.call('ZCOUNT', ranking, '-inf', '(' .. stored)
  -- Among the members tied at this stored score, those sorting before the place's member:
  -- a binary search by index (O(log ties) ZRANGEs), never a scan of the ties.
  local ties = redis.call('ZCOUNT', ranking, stored, stored)
  out[#out + 1] = better + tied_before(ranking, better, ties, member, false)
end
return out
