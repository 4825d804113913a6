-- Applies a batch of writes to boards of any rule, order, tie-break and caps, in order,
-- all or none; publishes each write that changed a kept score. increment.lua stays the
-- path of INCREMENT/DESC/SHARED boards without total caps (the hot path); this script
-- takes every batch that touches another board (docs/boards.md, "Storage per rule").
--
-- KEYS: per period g = 1..G of the batch, in order of first use:
--   KEYS[6g-5] ranking, KEYS[6g-4] the current bucket of client event ids (hash: id ->
--   fingerprint), KEYS[6g-3] the bucket before it, KEYS[6g-2] loaded marker, KEYS[6g-1]
--   instants (hash: username -> the 16 hex digits of the instant the player reached the
--   kept score; field '' = the key's clock, the last instant given out), KEYS[6g] writers
--   (hash: writer id -> last applied sequence; common.lua `check_writers`); then, when
--   period g has a channel (a single Redis only), KEYS[6G+g] its board's watcher marker
--   (watchers.py: absent = nobody watches, nothing is published).
-- ARGV[1] = G, ARGV[2] = '1' for a dry run (check only: loaded, ranges, caps), then per
--   period 11 values: channel ('' = publish nothing, the caller publishes), board, period,
--   expire-at in Unix milliseconds ('0' = never), the ms the current event-id bucket lives
--   when created here (keys.py), rule ('increment', 'best', 'latest'),
--   sign (-1: DESC, 1: ASC; stored score = sign * score), '1' for EARLIEST ties, '1' when
--   the period keeps instants (BEST, LATEST or EARLIEST: the history replays them),
--   minScore ('' = none), maxScore ('' = none);
-- then one JSON array of the writes, each [period g, username, value (a delta on
--   INCREMENT boards, the submitted score otherwise), 1 when the event id is the client's
--   (0 when generated, never stored), event id, and for a client's id its fingerprint, and
--   for a writer's call writer id, sequence, call number].
--
-- Returns {1, g} when period g is not loaded, {2, i} when write i would take a score
-- beyond +-(2^53 - 1), {3, i} when write i's event id was used for another write,
-- {4, i, score} / {5, i, score} when write i would take a kept score (a total) below
-- minScore / above maxScore (nothing applied in any of these), {0} after a dry run, else
-- {0, then per write: applied, score, rank, had score, previous score, previous rank,
-- the instant it was applied (0: none kept), and on EARLIEST boards the instant the
-- player had reached its score before the write (0: none; a sharded board's ranks need
-- the member it had)}.

local periods = {}
local count = tonumber(ARGV[1])
local dry_run = ARGV[2] == '1'
local at = 3
for g = 1, count do
  periods[g] = {
    ranking = KEYS[6 * g - 5],
    events = KEYS[6 * g - 4],
    events_before = KEYS[6 * g - 3],
    loaded = KEYS[6 * g - 2],
    instants = KEYS[6 * g - 1],
    writers = KEYS[6 * g],
    channel = ARGV[at],
    board = ARGV[at + 1],
    period = ARGV[at + 2],
    expire_at = ARGV[at + 3],
    events_ttl = ARGV[at + 4],
    rule = ARGV[at + 5],
    sign = tonumber(ARGV[at + 6]),
    earliest = ARGV[at + 7] == '1',
    timed = ARGV[at + 8] == '1',
    min = tonumber(ARGV[at + 9]),
    max = tonumber(ARGV[at + 10]),
    scores = {},
    seen = {},
  }
  at = at + 11
end

local unloaded = first_unloaded(periods, count)
if unloaded then
  return {1, unloaded}
end

local writes = decode_writes(ARGV[at], periods)
local replayed = check_writers(writes)

-- The board's order and ties, for the shared helpers of common.lua.
local function use(p)
  SIGN = p.sign
  EARLIEST = p.earliest
end

-- A player's member in the ranking (nil: no score yet).
local function member_of(p, username)
  if p.earliest then
    local instant = redis.call('HGET', p.instants, username)
    if not instant then
      return nil
    end
    return instant .. username
  end
  return username
end

local function kept_of(p, username)
  local member = member_of(p, username)
  if member == nil then
    return nil
  end
  local stored = redis.call('ZSCORE', p.ranking, member)
  if stored then
    return score_of(stored)
  end
  return nil
end

-- Whether `a` ranks strictly ahead of `b` (board_model.ranks_before).
local function ahead(p, a, b)
  return p.sign * a < p.sign * b
end

-- board_model.kept_score: the kept score after a write of `value`.
local function kept_after(p, old, value)
  if old == nil then
    return value
  end
  if p.rule == 'increment' then
    return old + value
  end
  if p.rule == 'best' then
    if ahead(p, value, old) then
      return value
    end
    return old
  end
  return value
end

-- Pass 1 simulates the batch, so that nothing is written when any write is refused.
-- Kept scores are tracked per period (false = no score yet); each write notes the score
-- before it.
local duplicate = {}
for i, w in ipairs(writes) do
  local p = w.period
  use(p)
  local old = p.scores[w.username]
  if old == nil then
    old = kept_of(p, w.username) or false
    p.scores[w.username] = old
  end
  w.old = old
  -- A replay (of an event id or a writer's call) answers with the standing; the same id
  -- for another write is refused.
  local event = replayed[i] and 'replay' or check_event_id(p, w)
  if event == 'reused' then
    return {3, i}
  elseif event == 'replay' then
    duplicate[i] = true
  else
    local new = kept_after(p, old or nil, w.value)
    if math.abs(new) > MAX_EXACT then
      return {2, i}
    end
    -- The caps bound the submission on BEST/LATEST boards, the total on INCREMENT ones.
    local capped = new
    if p.rule ~= 'increment' then
      capped = w.value
    end
    if p.min ~= nil and capped < p.min then
      return {4, i, fmt(capped)}
    end
    if p.max ~= nil and capped > p.max then
      return {5, i, fmt(capped)}
    end
    p.scores[w.username] = new
  end
end

if dry_run then
  return {0}
end

-- Pass 2 applies, in the same order, so each write finds the score pass 1 noted.
local out = {0}
local function append(applied, score, rank, old, previous_rank, instant, reached)
  append_outcome(out, applied, score, rank, old, previous_rank)
  out[#out + 1] = instant
  out[#out + 1] = reached
end

-- The instant a player with a kept score reached it (EARLIEST boards; else 0).
local function reached_of(p, username, old)
  if old == nil or not p.earliest then
    return 0
  end
  return tonumber(redis.call('HGET', p.instants, username), 16)
end

-- The standing of a player with kept score `score` (nil: none, ranked where 0 would be).
local function rank_now(p, username, score)
  if score ~= nil and p.earliest then
    return redis.call('ZRANK', p.ranking, member_of(p, username)) + 1
  end
  return rank_of(p.ranking, score or 0)
end

-- The key's clock: microseconds of Redis TIME, strictly increasing per ranking key
-- (tiebreak.next_instant), so that two writers in the same microsecond, or a clock
-- stepping back after a failover, never tie or reorder.
local now
local function next_instant(p)
  if now == nil then
    local time = redis.call('TIME')
    now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  end
  if p.clock == nil then
    local last = redis.call('HGET', p.instants, '')
    p.clock = last and tonumber(last, 16) or -1
  end
  p.clock = math.max(now, p.clock + 1)
  return p.clock
end

-- A period nobody watches publishes nothing.
for g = 1, count do
  if periods[g].channel ~= '' and redis.call('EXISTS', KEYS[6 * count + g]) == 0 then
    periods[g].channel = ''
  end
end

local changes = {messages = {}, channels = {}}
for i, w in ipairs(writes) do
  local p = w.period
  use(p)
  local old = w.old or nil
  if duplicate[i] then
    local rank = rank_now(p, w.username, old)
    append(0, old or 0, rank, old, rank, 0, reached_of(p, w.username, old))
  else
    local previous_rank = nil
    if old ~= nil then
      previous_rank = rank_now(p, w.username, old)
    end
    local new = kept_after(p, old, w.value)
    local reached = reached_of(p, w.username, old)
    local instant = 0
    if p.timed then
      instant = next_instant(p)
      redis.call('HSET', p.instants, '', string.format('%016x', instant))
      p.instants_written = true
    end
    local changed = old == nil or new ~= old
    if changed then
      if p.earliest then
        local hex = string.format('%016x', instant)
        if old ~= nil then
          redis.call('ZREM', p.ranking, member_of(p, w.username))
        end
        redis.call('ZADD', p.ranking, fmt(stored_of(new)), hex .. w.username)
        redis.call('HSET', p.instants, w.username, hex)
      else
        redis.call('ZADD', p.ranking, fmt(stored_of(new)), w.username)
      end
      p.ranking_written = true
    end
    if w.client then
      redis.call('HSET', p.events, w.event_id, w.fingerprint)
      p.events_written = true
    end
    local rank = rank_now(p, w.username, new)
    append(1, new, rank, old, previous_rank, instant, reached)
    if changed then
      queue_change(changes, p, w.username, old, new, previous_rank, rank)
    end
  end
end

publish_changes(changes)
-- Keys created here expire with the period (common.lua `expire_written`), the instants
-- hash too, and the loaded marker with it (GT never shortens it).
for g = 1, count do
  local p = periods[g]
  expire_written(p)
  record_writers(p)
  if p.expire_at ~= '0' and p.instants_written and redis.call('PTTL', p.instants) == -1 then
    redis.call('PEXPIREAT', p.instants, p.expire_at)
    redis.call('PEXPIREAT', p.loaded, p.expire_at, 'GT')
  end
end

return out
