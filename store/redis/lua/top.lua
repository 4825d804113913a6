-- Players at positions offset .. offset+limit-1.
-- KEYS: ranking, loaded marker. ARGV: limit, offset, then on boards other than DESC with
-- shared ranks: sign, '1' for EARLIEST (use_board, common.lua).
-- Returns {0} when not loaded, else {1, player count, username, score, rank, ...}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
if ARGV[3] then
  use_board(ARGV[3], ARGV[4])
end
local limit, offset = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {1, redis.call('ZCARD', KEYS[1])}
-- ZRANGE would read stop = offset - 1 = -1 as "to the end".
if limit > 0 then
  append_page(KEYS[1], offset, offset + limit - 1, out)
end
return out
