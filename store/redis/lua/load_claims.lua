-- Swaps a freshly written event-id record in for a sharded board period (keys.py), after
-- its shards were loaded: the record's presence then says the whole period is loaded.
-- KEYS: the record, the temporary record (written with the field '' only), the record's
--   current event-id bucket, its temporary key (every restored id), the bucket before the
--   current one (keys.py: the idempotency window).
-- ARGV[1] expire-at in Unix milliseconds, or 0 to keep the record for ever; ARGV[2] the
--   ms the current bucket lives (the window, not the period).
redis.call('UNLINK', KEYS[3], KEYS[5])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('RENAME', KEYS[2], KEYS[1])
if ARGV[1] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
end
return 1
