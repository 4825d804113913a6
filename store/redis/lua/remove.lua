-- Takes a player out of one ranking (one shard's, on a sharded board) and forgets the
-- client event ids bound to them; publishes the removal.
--
-- KEYS[1] ranking, KEYS[2] loaded marker, KEYS[3] client event ids (hash: id -> fingerprint).
-- ARGV[1] username, ARGV[2] '1' to refuse a period that is not loaded ('0': take whatever
--   is there, for an erasure), ARGV[3] channel ('' = publish nothing, the caller publishes),
--   ARGV[4] board, ARGV[5] period, ARGV[6] JSON array of event ids to forget: each one is
--   deleted when it is bound to this player (its fingerprint ends in ':' .. username).
--
-- Returns {0} when not loaded (nothing changed), {1, forgotten} when the player had no
-- score, else {2, forgotten, score, rank}: the score and the rank (among this key set) the
-- player had. The message (store/redis/changes.py) is one change with "removed": true,
-- its score and rank the ones the player had: each instance moves everyone below up one.

local username = ARGV[1]
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end

local forgotten = 0
local suffix = ':' .. username
for _, event_id in ipairs(cjson.decode(ARGV[6])) do
  local bound = redis.call('HGET', KEYS[3], event_id)
  if bound and string.sub(bound, -#suffix) == suffix then
    forgotten = forgotten + redis.call('HDEL', KEYS[3], event_id)
  end
end

local stored = redis.call('ZSCORE', KEYS[1], username)
if not stored then
  return {1, forgotten}
end
local score = score_of(stored)
local rank = rank_of(KEYS[1], score)
redis.call('ZREM', KEYS[1], username)
if ARGV[3] ~= '' then
  -- Built by hand like increment.lua's messages: cjson prints too few digits for scores.
  redis.call('PUBLISH', ARGV[3], '[{"board":' .. cjson.encode(ARGV[4])
    .. ',"period":' .. cjson.encode(ARGV[5])
    .. ',"username":' .. cjson.encode(username)
    .. ',"previous_score":' .. fmt(score) .. ',"score":' .. fmt(score)
    .. ',"previous_rank":' .. fmt(rank) .. ',"rank":' .. fmt(rank)
    .. ',"removed":true}]')
end
return {2, forgotten, score, rank}
