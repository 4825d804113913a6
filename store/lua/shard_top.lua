-- The first `count` players of one shard, best first, for a merge across shards.
-- KEYS: ranking, loaded marker. ARGV: count.
-- Returns {0} when not loaded, else {1, username, score, ...}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local count = tonumber(ARGV[1])
local out = {1}
if count > 0 then
  local entries = redis.call('ZRANGE', KEYS[1], 0, count - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    out[#out + 1] = entries[i]
    out[#out + 1] = score_of(entries[i + 1])
  end
end
return out
