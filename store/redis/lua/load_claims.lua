-- Swaps a freshly written event-id record in for a sharded board period (keys.py), after
-- its shards were loaded: the record's presence then says the whole period is loaded.
-- KEYS: the record, the temporary record (written with the field '' and every event id).
-- ARGV: expire-at in Unix milliseconds, or 0 to keep the record for ever.
redis.call('RENAME', KEYS[2], KEYS[1])
if ARGV[1] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
end
return 1
