-- For each score given, how many players of this shard have a strictly higher one:
-- a sharded board's rank is 1 + the sum of these counts over its shards.
-- KEYS: ranking, loaded marker. ARGV: scores.
-- Returns {0} when not loaded, else {1, count, ...} in ARGV order.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local out = {1}
for i = 1, #ARGV do
  out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. fmt(-tonumber(ARGV[i])))
end
return out
