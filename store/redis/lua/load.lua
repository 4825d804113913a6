-- Swaps freshly written temporary keys in as a period's live ranking and event ids,
-- then marks the period loaded: readers see the old state or the whole new one.
-- KEYS: ranking, events, loaded marker, temporary ranking, temporary events, and on
--   boards that keep instants (BEST, LATEST, EARLIEST: docs/boards.md) the instants hash
--   and its temporary key.
-- ARGV: expire-at in Unix milliseconds, or 0 to keep the keys for ever.
-- UNLINK frees a big old ranking in the background instead of blocking Redis.
redis.call('UNLINK', KEYS[1], KEYS[2])
-- An empty load wrote no temporary key: the period is loaded with no players.
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[1])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('RENAME', KEYS[5], KEYS[2])
end
local live = {KEYS[1], KEYS[2], KEYS[3]}
if KEYS[6] then
  redis.call('UNLINK', KEYS[6])
  if redis.call('EXISTS', KEYS[7]) == 1 then
    redis.call('RENAME', KEYS[7], KEYS[6])
  end
  live[4] = KEYS[6]
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
