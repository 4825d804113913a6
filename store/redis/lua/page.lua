-- One page of the ranking after a place in its order (paging with stable cursors).
-- The place is an order key: a stored score and a member, as the sorted set holds them;
-- the page starts with the first member after it, whether or not the place's member is
-- still there or still at that score (a cursor outlives the score it was made from).
-- KEYS: ranking, loaded marker. ARGV: how many, sign, '1' for EARLIEST (use_board,
--   common.lua), then (optional) the place's stored score and member.
-- Returns {0} when not loaded, else {1, player count, position of the first one
--   (0-based), players with a strictly better stored score than the place's (0 without
--   one), then per player: member, stored score, score, username}. Ranks follow from these
--   (store/redis/ranks.py `page_ranks`), as a sharded board's merged pages need too.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local ranking = KEYS[1]

use_board(ARGV[2], ARGV[3])
local first = tonumber(ARGV[1])
local count = redis.call('ZCARD', ranking)
local position = 0
local better = 0
if ARGV[4] then
  local stored, member = ARGV[4], ARGV[5]
  better = redis.call('ZCOUNT', ranking, '-inf', '(' .. stored)
  -- The members up to and including the place: all with a lower stored score, then those
  -- tied with it whose member sorts no later (ZRANK when the member is there at that score,
  -- else a binary search over the tie group, by index).
  local own = redis.call('ZSCORE', ranking, member)
  if own and tonumber(own) == tonumber(stored) then
    position = redis.call('ZRANK', ranking, member) + 1
  else
    local ties = redis.call('ZCOUNT', ranking, stored, stored)
    position = better + tied_before(ranking, better, ties, member, true)
  end
end
local out = {1, count, position, better}
if first > 0 then
  local entries = redis.call('ZRANGE', ranking, position, position + first - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    out[#out + 1] = entries[i]
    out[#out + 1] = entries[i + 1]
    out[#out + 1] = score_of(entries[i + 1])
    out[#out + 1] = username_of(entries[i])
  end
end
return out
