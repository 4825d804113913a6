-- Shared by every ranking script (prepended to each one before it is registered).
--
-- Scores are stored NEGATED, so ascending member order is the leaderboard order:
-- score descending, then username ascending (Redis orders equal scores by member bytes).

-- Lua's tostring and `..` format with %.14g, which corrupts integers above 1e14.
local function fmt(number)
  return string.format('%.17g', number)
end

-- A score from a stored (negated) member score; never -0, which would print as "-0".
local function score_of(stored)
  local score = -tonumber(stored)
  if score == 0 then
    return 0
  end
  return score
end

-- Standard competition rank: 1 + the number of players with a strictly higher score.
local function rank_of(ranking, score)
  return 1 + redis.call('ZCOUNT', ranking, '-inf', '(' .. fmt(-score))
end

-- Appends username, score, rank of the players at positions start..stop to `out`.
-- Only the first entry costs a ZCOUNT: a later one shares the previous rank on a tie,
-- otherwise its rank is its position.
local function append_page(ranking, start, stop, out)
  local entries = redis.call('ZRANGE', ranking, start, stop, 'WITHSCORES')
  local rank, previous
  for i = 1, #entries, 2 do
    local score = score_of(entries[i + 1])
    if previous == nil then
      rank = rank_of(ranking, score)
    elseif score ~= previous then
      rank = start + (i + 1) / 2
    end
    previous = score
    out[#out + 1] = entries[i]
    out[#out + 1] = score
    out[#out + 1] = rank
  end
  return out
end

