-- Binds client event ids to the increments they name, for one board period of a sharded
-- board: the record every shard's increments are checked against first (keys.py). Each
-- shard's own event-id hash still decides whether its increment is applied (exactly
-- once); this record only refuses an id reused for another increment across shards.
--
-- KEYS[1] the board period's event-id record (it exists from the period's load on,
--   holding the field ''), KEYS[2] its current event-id bucket (hash: id -> fingerprint),
--   KEYS[3] the bucket before it (keys.py, the idempotency window).
-- ARGV[1] '1' to check only (write nothing), ARGV[2] one JSON array of [event id,
--   fingerprint], in batch order, ARGV[3] the period's expire-at in Unix milliseconds
--   ('0' = never): a write extends the record to it (an empty load may have given it a
--   short expiry, keys.py), ARGV[4] the ms the current bucket lives when created here.
--
-- Returns {1} when the record is missing (the period is not loaded), {3, i} when item i's
-- id is bound to another fingerprint (nothing written), else {0}.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {1}
end
local items = cjson.decode(ARGV[2])
local seen = {}
local unbound = {}
for i, item in ipairs(items) do
  local event_id, fingerprint = item[1], item[2]
  local bound = seen[event_id] or redis.call('HGET', KEYS[2], event_id)
    or redis.call('HGET', KEYS[3], event_id)
  if bound then
    if bound ~= fingerprint then
      return {3, i}
    end
  else
    seen[event_id] = fingerprint
    unbound[#unbound + 1] = event_id
  end
end
if ARGV[1] ~= '1' and #unbound > 0 then
  for _, event_id in ipairs(unbound) do
    redis.call('HSET', KEYS[2], event_id, seen[event_id])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4], 'NX')
  if ARGV[3] ~= '0' then
    redis.call('PEXPIREAT', KEYS[1], ARGV[3], 'GT')
  end
end
return {0}
