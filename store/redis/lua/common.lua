-- Shared by every ranking script (prepended to each one before it is registered).
--
-- Scores are stored so that ascending member order is the leaderboard order: NEGATED on
-- DESC boards (SIGN = -1, the default), as they are on ASC boards (SIGN = 1); ties by
-- username ascending (Redis orders equal scores by member bytes). On EARLIEST boards a
-- member is 16 hex digits of the instant the player reached the score, then the username,
-- so equal scores list earliest first and every rank is a position (docs/boards.md).
-- A read script of a board other than DESC/SHARED is told so by `use_board`.

local SIGN, EARLIEST = -1, false
local INSTANT_DIGITS = 16

local function use_board(sign, earliest)
  SIGN = tonumber(sign)
  EARLIEST = earliest == '1'
end

-- A member's username: behind its instant on EARLIEST boards.
local function username_of(member)
  if EARLIEST then
    return string.sub(member, INSTANT_DIGITS + 1)
  end
  return member
end

-- Lua's tostring and `..` format with %.14g, which corrupts integers above 1e14.
local function fmt(number)
  return string.format('%.17g', number)
end

-- A score from a stored member score; never -0, which would print as "-0".
local function score_of(stored)
  local score = SIGN * tonumber(stored)
  if score == 0 then
    return 0
  end
  return score
end

-- Standard competition rank: 1 + the number of players with a strictly better score.
local function rank_of(ranking, score)
  return 1 + redis.call('ZCOUNT', ranking, '-inf', '(' .. fmt(SIGN * score))
end

-- Appends username, score, rank of the players at positions start..stop to `out`.
-- Only the first entry costs a ZCOUNT: a later one shares the previous rank on a tie,
-- otherwise its rank is its position (always, on EARLIEST boards: ranks are unique).
local function append_page(ranking, start, stop, out)
  local entries = redis.call('ZRANGE', ranking, start, stop, 'WITHSCORES')
  local rank, previous
  for i = 1, #entries, 2 do
    local score = score_of(entries[i + 1])
    if EARLIEST then
      rank = start + (i + 1) / 2
    elseif previous == nil then
      rank = rank_of(ranking, score)
    elseif score ~= previous then
      rank = start + (i + 1) / 2
    end
    previous = score
    out[#out + 1] = username_of(entries[i])
    out[#out + 1] = score
    out[#out + 1] = rank
  end
  return out
end

