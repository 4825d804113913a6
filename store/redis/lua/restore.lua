-- Gives a player a kept score back (unbanPlayer: what the history holds), on a board of
-- any rule, order and tie-break; publishes it.
--
-- KEYS[1] ranking, KEYS[2] loaded marker, KEYS[3] instants (hash: username -> instant hex).
-- ARGV[1] username, ARGV[2] score, ARGV[3] channel ('' = publish nothing, the caller
--   publishes), ARGV[4] board, ARGV[5] period, ARGV[6] expire-at in Unix milliseconds
--   ('0' = never), ARGV[7] sign (-1: DESC, 1: ASC), ARGV[8] '1' for EARLIEST ties,
--   ARGV[9] the 16 hex digits of the instant the player reached the score (EARLIEST: the
--   member's prefix, as a rebuild from the history would give it).
--
-- Returns {0} when not loaded (nothing changed: the period's rebuild will rank the player),
-- else {1, had score (0/1), previous score, previous rank, rank, previous member ('' when
-- none), member} (ranks among this key set; the members for a sharded EARLIEST board).

local username = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
use_board(ARGV[7], ARGV[8])
local total = tonumber(ARGV[2])

local function member_of()
  if EARLIEST then
    local instant = redis.call('HGET', KEYS[3], username)
    if not instant then
      return nil
    end
    return instant .. username
  end
  return username
end

local function rank_of_member(member, score)
  if EARLIEST then
    return redis.call('ZRANK', KEYS[1], member) + 1
  end
  return rank_of(KEYS[1], score)
end

local old_member = member_of()
local stored = old_member and redis.call('ZSCORE', KEYS[1], old_member)
local had, previous, previous_rank = 0, 0, 0
if stored then
  had = 1
  previous = score_of(stored)
  previous_rank = rank_of_member(old_member, previous)
  redis.call('ZREM', KEYS[1], old_member)
end
local kept = SIGN * total
if kept == 0 then
  kept = 0
end
local member = username
if EARLIEST then
  member = ARGV[9] .. username
  redis.call('HSET', KEYS[3], username, ARGV[9])
end
redis.call('ZADD', KEYS[1], fmt(kept), member)
local rank = rank_of_member(member, total)
if ARGV[3] ~= '' then
  local previous_json, previous_rank_json = 'null', 'null'
  if had == 1 then
    previous_json, previous_rank_json = fmt(previous), fmt(previous_rank)
  end
  redis.call('PUBLISH', ARGV[3], '[{"board":' .. cjson.encode(ARGV[4])
    .. ',"period":' .. cjson.encode(ARGV[5])
    .. ',"username":' .. cjson.encode(username)
    .. ',"previous_score":' .. previous_json .. ',"score":' .. fmt(total)
    .. ',"previous_rank":' .. previous_rank_json .. ',"rank":' .. fmt(rank) .. '}]')
end
if ARGV[6] ~= '0' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  redis.call('PEXPIREAT', KEYS[2], ARGV[6], 'GT')
end
if EARLIEST and ARGV[6] ~= '0' and redis.call('PTTL', KEYS[3]) == -1 then
  redis.call('PEXPIREAT', KEYS[3], ARGV[6])
end
return {1, had, fmt(previous), previous_rank, rank, old_member or '', member}
