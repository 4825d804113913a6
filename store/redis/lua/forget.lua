-- Forgets the client event ids bound to a player in one event-id hash (a sharded board
-- period's own record, which lives apart from its shards: keys.py).
--
-- KEYS: the buckets of event ids (hashes: id -> fingerprint) still in the window.
-- ARGV[1] username, ARGV[2] JSON array of event ids: each one is deleted when it is bound
--   to this player (its fingerprint ends in ':' .. username).
--
-- Returns how many were deleted.

local suffix = ':' .. ARGV[1]
local forgotten = 0
for _, event_id in ipairs(cjson.decode(ARGV[2])) do
  for _, key in ipairs(KEYS) do
    local bound = redis.call('HGET', key, event_id)
    if bound and string.sub(bound, -#suffix) == suffix then
      forgotten = forgotten + redis.call('HDEL', key, event_id)
    end
  end
end
return forgotten
