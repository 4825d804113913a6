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

-- Byte order, as Redis orders members (Lua's `<` follows the server's locale).
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local out = {1, redis.call('ZCARD', ranking)}
for i = 1, #ARGV, 2 do
  local stored, member = ARGV[i], ARGV[i + 1]
  local better = redis.call('ZCOUNT', ranking, '-inf', '(' .. stored)
  -- Among the members tied at this stored score, those sorting before the place's member:
  -- a binary search by index (O(log ties) ZRANGEs), never a scan of the ties.
  local ties = redis.call('ZCOUNT', ranking, stored, stored)
  local low, high = 0, ties
  while low < high do
    local middle = math.floor((low + high) / 2)
    local at = redis.call('ZRANGE', ranking, better + middle, better + middle)[1]
    if bytes_less(at, member) then
      low = middle + 1
    else
      high = middle
    end
  end
  out[#out + 1] = better + low
end
return out
