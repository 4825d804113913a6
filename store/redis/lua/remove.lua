-- Takes a player out of one ranking (one shard's, on a sharded board) of any rule, order
-- and tie-break, and forgets the client event ids bound to them; publishes the removal.
--
-- KEYS[1] ranking, KEYS[2] loaded marker, KEYS[3] the current bucket of client event ids
--   (hash: id -> fingerprint), KEYS[4] instants (hash: username -> instant hex, '' -> the
--   key's clock; write.lua), KEYS[5] the event-id bucket before the current one.
-- ARGV[1] username, ARGV[2] '1' to refuse a period that is not loaded ('0': take whatever
--   is there, for an erasure), ARGV[3] channel ('' = publish nothing, the caller publishes),
--   ARGV[4] board, ARGV[5] period, ARGV[6] JSON array of event ids to forget: each one is
--   deleted when it is bound to this player (its fingerprint ends in ':' .. username),
--   ARGV[7] sign (-1: DESC, 1: ASC), ARGV[8] '1' for EARLIEST ties, ARGV[9] '1' to take an
--   instant from the key's clock for the removal (boards that keep instants: the removal
--   row's applied_at_us, where a rebuild's replay starts the player afresh), ARGV[10]
--   expire-at in Unix milliseconds for an instants hash created here ('0' = never).
--
-- Returns {0} when not loaded (nothing changed), {1, forgotten} when the player had no
-- score, else {2, forgotten, score, rank, instant, member}: the score and the rank (among
-- this key set) the player had, the removal's instant (0: none taken) and the member it
-- had (a sharded EARLIEST board's caller counts the players before it on every shard). The message
-- (store/redis/changes.py) is one change with "removed": true, its score and rank the ones
-- the player had: each instance moves everyone below up one.

local username = ARGV[1]
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
use_board(ARGV[7], ARGV[8])

local forgotten = 0
local suffix = ':' .. username
for _, event_id in ipairs(cjson.decode(ARGV[6])) do
  for _, key in ipairs({KEYS[3], KEYS[5]}) do
    local bound = redis.call('HGET', key, event_id)
    if bound and string.sub(bound, -#suffix) == suffix then
      forgotten = forgotten + redis.call('HDEL', key, event_id)
    end
  end
end

local member = username
if EARLIEST then
  local instant = redis.call('HGET', KEYS[4], username)
  if not instant then
    return {1, forgotten}
  end
  member = instant .. username
end
local stored = redis.call('ZSCORE', KEYS[1], member)
if not stored then
  return {1, forgotten}
end
local score = score_of(stored)
local rank
if EARLIEST then
  rank = redis.call('ZRANK', KEYS[1], member) + 1
  redis.call('HDEL', KEYS[4], username)
else
  rank = rank_of(KEYS[1], score)
end
redis.call('ZREM', KEYS[1], member)

-- The key's clock (write.lua's next_instant): strictly after every instant given out.
local instant = 0
if ARGV[9] == '1' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local last = redis.call('HGET', KEYS[4], '')
  instant = math.max(now, (last and tonumber(last, 16) or -1) + 1)
  redis.call('HSET', KEYS[4], '', string.format('%016x', instant))
  if ARGV[10] ~= '0' and redis.call('PTTL', KEYS[4]) == -1 then
    redis.call('PEXPIREAT', KEYS[4], ARGV[10])
  end
end

if ARGV[3] ~= '' then
  -- Built by hand like increment.lua's messages: cjson prints too few digits for scores.
  redis.call('PUBLISH', ARGV[3], '[{"board":' .. cjson.encode(ARGV[4])
    .. ',"period":' .. cjson.encode(ARGV[5])
    .. ',"username":' .. cjson.encode(username)
    .. ',"previous_score":' .. fmt(score) .. ',"score":' .. fmt(score)
    .. ',"previous_rank":' .. fmt(rank) .. ',"rank":' .. fmt(rank)
    .. ',"removed":true}]')
end
return {2, forgotten, fmt(score), rank, fmt(instant), member}
