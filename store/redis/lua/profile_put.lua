-- Caches player profiles, each only over an older version (racing writers and readers
-- that fill the cache converge on the newest). Entries are "<version>:<payload>".
-- KEYS: one profile bucket hash. ARGV: username, version, entry, username, version, entry...
-- Returns the number of entries written.
local written = 0
for i = 1, #ARGV, 3 do
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
