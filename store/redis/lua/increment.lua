-- Applies a batch of increments, in order, all or none; publishes each applied one (of a
-- watched board).
--
-- KEYS: per period g = 1..G of the batch, in order of first use:
--   KEYS[5g-4] ranking, KEYS[5g-3] the current bucket of client event ids (hash: id ->
--   fingerprint), KEYS[5g-2] the bucket before it, KEYS[5g-1] loaded marker, KEYS[5g]
--   writers (hash: writer id -> last applied sequence; common.lua `check_writers`); then,
--   when period g has a channel (a single Redis only), KEYS[5G+g] its board's watcher
--   marker (watchers.py: absent = nobody watches, nothing is published).
-- ARGV[1] = G, ARGV[2] = '1' for a dry run (check only: loaded, ranges), then per period
--   5 values: channel ('' = publish nothing, the caller publishes), board, period,
--   expire-at in Unix milliseconds ('0' = never), and the ms the current event-id bucket
--   lives when created here (keys.py, the idempotency window);
-- then one JSON array of the increments, each [period g, username, delta, 1 when the event
--   id is the client's (0 when generated, never stored), event id, and for a client's id
--   its fingerprint (keys.py), and for a writer's call writer id, sequence, call number].
--   (Deltas stay within +-(2^53 - 1), sequences within 0..2^53 - 1: cjson decodes them
--   exactly.) Last, '1' when the caller wants ranks (else they are computed only for a
--   period that publishes, and 0 in the reply otherwise).
--
-- Returns {1, g} when period g is not loaded, {2, i} when increment i would take a
-- total beyond +-(2^53 - 1), {3, i} when increment i's event id was used for another
-- increment (nothing applied in any of these), {0} after a dry run, else
-- {0, then per increment: applied, score, rank, had score, previous score, previous rank}.

local periods = {}
local count = tonumber(ARGV[1])
local dry_run = ARGV[2] == '1'
local at = 3
for g = 1, count do
  periods[g] = {
    ranking = KEYS[5 * g - 4],
    events = KEYS[5 * g - 3],
    events_before = KEYS[5 * g - 2],
    loaded = KEYS[5 * g - 1],
    writers = KEYS[5 * g],
    channel = ARGV[at],
    board = ARGV[at + 1],
    period = ARGV[at + 2],
    expire_at = ARGV[at + 3],
    events_ttl = ARGV[at + 4],
    scores = {},
    seen = {},
  }
  at = at + 5
end

local unloaded = first_unloaded(periods, count)
if unloaded then
  return {1, unloaded}
end

-- Each increment's value is its delta.
local increments = decode_writes(ARGV[at], periods)
local replayed = check_writers(increments)

local function stored_score(p, username)
  local stored = redis.call('ZSCORE', p.ranking, username)
  if stored then
    return score_of(stored)
  end
  return nil
end

-- Pass 1 simulates the batch, so that nothing is written when any total would leave
-- the exact range. Scores are tracked per period (false = no score yet), and each
-- increment notes the score before it, which pass 2 then need not read again.
local duplicate = {}
for i, inc in ipairs(increments) do
  local p = inc.period
  local old = p.scores[inc.username]
  if old == nil then
    old = stored_score(p, inc.username) or false
    p.scores[inc.username] = old
  end
  inc.old = old
  -- A replay (of an event id or a writer's call) answers with the standing; the same id
  -- for another increment is refused.
  local event = replayed[i] and 'replay' or check_event_id(p, inc)
  if event == 'reused' then
    return {3, i}
  elseif event == 'replay' then
    duplicate[i] = true
  else
    local new = (old or 0) + inc.value
    if math.abs(new) > MAX_EXACT then
      return {2, i}
    end
    p.scores[inc.username] = new
  end
end

if dry_run then
  return {0}
end

-- A period nobody watches publishes nothing; ranks only for the caller or a message.
local ranks = ARGV[at + 1] == '1'
for g = 1, count do
  local p = periods[g]
  if p.channel ~= '' and redis.call('EXISTS', KEYS[5 * count + g]) == 0 then
    p.channel = ''
  end
  p.ranked = ranks or p.channel ~= ''
end
local function rank_if(p, score)
  return p.ranked and rank_of(p.ranking, score) or 0
end

-- Pass 2 applies, in the same order, so each increment finds the score pass 1 noted.
local out = {0}
local changes = {messages = {}, channels = {}}
for i, inc in ipairs(increments) do
  local p = inc.period
  local old = inc.old or nil
  if duplicate[i] then
    -- Nothing changes; a player without a score stands where a score of 0 would.
    local rank = rank_if(p, old or 0)
    append_outcome(out, 0, old or 0, rank, old, rank)
  else
    local previous_rank = nil
    if old ~= nil then
      previous_rank = rank_if(p, old)
    end
    local new = (old or 0) + inc.value
    redis.call('ZADD', p.ranking, fmt(stored_of(new)), inc.username)
    p.ranking_written = true
    if inc.client then
      redis.call('HSET', p.events, inc.event_id, inc.fingerprint)
      p.events_written = true
    end
    local rank = rank_if(p, new)
    append_outcome(out, 1, new, rank, old, previous_rank)
    queue_change(changes, p, inc.username, old, new, previous_rank, rank)
  end
end

publish_changes(changes)
for g = 1, count do
  expire_written(periods[g])
  record_writers(periods[g])
end

return out
