-- An instance's dirty board periods (those it may have unflushed events of): declared
-- before its first write to one, retired once flushed. Each entry carries the generation
-- of its declaration, so a retirement sent before a newer declaration (on another
-- connection, arriving later) cannot remove it.
-- KEYS: the instance's dirty hash. ARGV: 1 (declare) or 0 (retire), then pairs of
-- "board|period" and generation.
-- Returns the number of entries changed.
local changed = 0
local declare = ARGV[1] == '1'
for i = 2, #ARGV, 2 do
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  local generation = tonumber(ARGV[i + 1])
  if declare and generation > stored then
    redis.call('HSET', KEYS[1], ARGV[i], generation)
    changed = changed + 1
  elseif not declare and stored >= 0 and stored <= generation then
    redis.call('HDEL', KEYS[1], ARGV[i])
    changed = changed + 1
  end
end
return changed
