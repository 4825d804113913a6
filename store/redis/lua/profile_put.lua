-- Caches player profiles, each only over an older version (racing writers and readers
-- that fill the cache converge on the newest). Entries are "<version>:<payload>"; the
-- field "" is the bucket's generation, which an erasure moves on (store/redis/profiles.py).
-- KEYS: one profile bucket hash.
-- ARGV[1]: the generation a refill read before its table read ('' = no check: a change
--   just stored), then username, version, entry, username, version, entry...
-- Returns the number of entries written (0 when the generation moved on: an erasure ran
-- since the refill's read, which may have found a row the erasure then deleted).
if ARGV[1] ~= '' then
  local generation = redis.call('HGET', KEYS[1], '') or '0'
  if generation ~= ARGV[1] then
    return 0
  end
end
local written = 0
for i = 2, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if current then
    local version = tonumber(string.match(current, '^(%d+):'))
    newer = version == nil or tonumber(ARGV[i + 1]) > version
  end
  if newer then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    written = written + 1
  end
end
return written
