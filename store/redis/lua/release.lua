-- Deletes a rebuild claim only while it still holds our token: an expired claim may
-- already belong to another instance.
-- KEYS: claim. ARGV: token. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
