-- An instance leaves the registry after a clean stop (its buffer is written): nobody waits
-- for it or reconciles after it.
-- KEYS: members (sorted set), fenced (hash), its dirty set. ARGV: instance id.
-- Returns 1 when it was registered.
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return redis.call('ZREM', KEYS[1], ARGV[1])
