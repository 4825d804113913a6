-- Swaps freshly written temporary keys in as a period's live ranking and event ids,
-- then marks the period loaded: readers see the old state or the whole new one.
-- KEYS: ranking, the current event-id bucket, loaded marker, temporary ranking, temporary
--   event ids, the event-id bucket before the current one (keys.py: the idempotency
--   window; a load puts every id it restores in the current bucket), the writers hash
--   (each writer's last sequence: common.lua `check_writers`) and its temporary key, and on
--   boards that keep instants (BEST, LATEST, EARLIEST: docs/boards.md) the instants hash
--   and its temporary key.
-- ARGV[1] expire-at in Unix milliseconds, or 0 to keep the keys for ever; ARGV[2] the ms
--   the current event-id bucket lives (the window, not the period).
-- UNLINK frees a big old ranking in the background instead of blocking Redis.
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[6], KEYS[7])
-- An empty load wrote no temporary key: the period is loaded with no players.
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[1])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('RENAME', KEYS[5], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local live = {KEYS[1], KEYS[3]}
if redis.call('EXISTS', KEYS[8]) == 1 then
  redis.call('RENAME', KEYS[8], KEYS[7])
  live[#live + 1] = KEYS[7]
end
if KEYS[9] then
  redis.call('UNLINK', KEYS[9])
  if redis.call('EXISTS', KEYS[10]) == 1 then
    redis.call('RENAME', KEYS[10], KEYS[9])
  end
  live[#live + 1] = KEYS[9]
end
redis.call('SET', KEYS[3], '1')
for _, key in ipairs(live) do
  if ARGV[1] == '0' then
    -- RENAME carried over the temporary keys' safety expiry.
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, ARGV[1])
  end
end
return 1
