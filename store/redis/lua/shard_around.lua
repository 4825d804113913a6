-- The players of one shard just before and just after a place in the leaderboard order
-- (score descending, ascending on ASC boards, then username ascending), for a
-- neighbourhood merged across shards.
-- The place is (score, username); the username itself, when it is in this shard, is
-- neither before nor after.
-- KEYS: ranking, loaded marker. ARGV: score, username, how many before, how many after,
--   then on ASC boards: sign, '0' (use_board, common.lua; sharded boards share ranks).
-- Returns {0} when not loaded, else {1, players before the place in this shard,
--   number of players returned before, players in this shard, then username, score
--   pairs: the `before` ones (best first), then the `after` ones}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
if ARGV[5] then
  use_board(ARGV[5], ARGV[6])
end
local ranking = KEYS[1]
local stored = SIGN * tonumber(ARGV[1])
local username = ARGV[2]
local want_before, want_after = tonumber(ARGV[3]), tonumber(ARGV[4])

-- Position of the place: members with a lower stored score, plus those tied with it
-- whose username sorts first (binary search over the tie group, by index).
local position
local own_rank = redis.call('ZRANK', ranking, username)
local next_position
if own_rank then
  position = own_rank
  next_position = own_rank + 1
else
  local first_tie = redis.call('ZCOUNT', ranking, '-inf', '(' .. fmt(stored))
  local ties = redis.call('ZCOUNT', ranking, fmt(stored), fmt(stored))
  position = first_tie + tied_before(ranking, first_tie, ties, username, false)
  next_position = position
end

local out = {1, position, 0, redis.call('ZCARD', ranking)}
local start = math.max(0, position - want_before)
if want_before > 0 and position > 0 then
  local entries = redis.call('ZRANGE', ranking, start, position - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    out[#out + 1] = entries[i]
    out[#out + 1] = score_of(entries[i + 1])
  end
  out[3] = #entries / 2
end
if want_after > 0 then
  local entries = redis.call(
    'ZRANGE', ranking, next_position, next_position + want_after - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    out[#out + 1] = entries[i]
    out[#out + 1] = score_of(entries[i + 1])
  end
end
return out
