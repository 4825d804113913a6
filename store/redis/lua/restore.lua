-- Gives a player a total back (unbanPlayer: the total the history holds); publishes it.
--
-- KEYS[1] ranking, KEYS[2] loaded marker.
-- ARGV[1] username, ARGV[2] total, ARGV[3] channel ('' = publish nothing, the caller
--   publishes), ARGV[4] board, ARGV[5] period, ARGV[6] expire-at in Unix milliseconds
--   ('0' = never).
--
-- Returns {0} when not loaded (nothing changed: the period's rebuild will rank the player),
-- else {1, had score (0/1), previous score, previous rank, rank} (ranks among this key set).

local username = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local total = tonumber(ARGV[2])
local stored = redis.call('ZSCORE', KEYS[1], username)
local had, previous, previous_rank = 0, 0, 0
if stored then
  had = 1
  previous = score_of(stored)
  previous_rank = rank_of(KEYS[1], previous)
end
local negated = -total
if negated == 0 then
  negated = 0
end
redis.call('ZADD', KEYS[1], fmt(negated), username)
local rank = rank_of(KEYS[1], total)
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
return {1, had, previous, previous_rank, rank}
