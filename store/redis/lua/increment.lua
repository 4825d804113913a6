-- Applies a batch of increments, in order, all or none; publishes each applied one.
--
-- KEYS: per period g = 1..G of the batch, in order of first use:
--   KEYS[3g-2] ranking, KEYS[3g-1] client event ids (hash: id -> fingerprint),
--   KEYS[3g] loaded marker.
-- ARGV[1] = G, ARGV[2] = '1' for a dry run (check only: loaded, ranges), then per period
--   4 values: channel ('' = publish nothing, the caller publishes), board, period,
--   expire-at in Unix milliseconds ('0' = never);
-- then one JSON array of the increments, each [period g, username, delta, 1 when the event
--   id is the client's (0 when generated, never stored), event id, and for a client's id
--   its fingerprint (keys.py)]. (Deltas stay within +-(2^53 - 1), which cjson decodes
--   exactly.)
--
-- Returns {1, g} when period g is not loaded, {2, i} when increment i would take a
-- total beyond +-(2^53 - 1), {3, i} when increment i's event id was used for another
-- increment (nothing applied in any of these), {0} after a dry run, else
-- {0, then per increment: applied, score, rank, had score, previous score, previous rank}.

local MAX_EXACT = 9007199254740991

local periods = {}
local count = tonumber(ARGV[1])
local dry_run = ARGV[2] == '1'
local at = 3
for g = 1, count do
  periods[g] = {
    ranking = KEYS[3 * g - 2],
    events = KEYS[3 * g - 1],
    loaded = KEYS[3 * g],
    channel = ARGV[at],
    board = ARGV[at + 1],
    period = ARGV[at + 2],
    expire_at = ARGV[at + 3],
    scores = {},
    seen = {},
  }
  at = at + 4
end

for g = 1, count do
  if redis.call('EXISTS', periods[g].loaded) == 0 then
    return {1, g}
  end
end

local increments = {}
for i, item in ipairs(cjson.decode(ARGV[at])) do
  increments[i] = {
    period = periods[item[1]],
    username = item[2],
    delta = item[3],
    client = item[4] == 1,
    event_id = item[5],
    fingerprint = item[6],
  }
end

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
  local recorded = nil
  if inc.client then
    recorded = p.seen[inc.event_id] or redis.call('HGET', p.events, inc.event_id)
  end
  if recorded then
    -- A replay answers with the standing; the same id for another increment is refused.
    if recorded ~= inc.fingerprint then
      return {3, i}
    end
    duplicate[i] = true
  else
    if inc.client then
      p.seen[inc.event_id] = inc.fingerprint
    end
    local new = (old or 0) + inc.delta
    if math.abs(new) > MAX_EXACT then
      return {2, i}
    end
    p.scores[inc.username] = new
  end
end

if dry_run then
  return {0}
end

-- Pass 2 applies, in the same order, so each increment finds the score pass 1 noted.
local out = {0}
local function append(applied, score, rank, old, previous_rank)
  out[#out + 1] = applied
  out[#out + 1] = score
  out[#out + 1] = rank
  if old == nil then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    out[#out + 1] = old
    out[#out + 1] = previous_rank
  end
end

local function json_number(number)
  if number == nil then
    return 'null'
  end
  return fmt(number)
end

local messages = {}
local channels = {}
for i, inc in ipairs(increments) do
  local p = inc.period
  local old = inc.old or nil
  if duplicate[i] then
    -- Nothing changes; a player without a score stands where a score of 0 would.
    local rank = rank_of(p.ranking, old or 0)
    append(0, old or 0, rank, old, rank)
  else
    local previous_rank = nil
    if old ~= nil then
      previous_rank = rank_of(p.ranking, old)
    end
    local new = (old or 0) + inc.delta
    local stored = -new
    if stored == 0 then
      stored = 0
    end
    redis.call('ZADD', p.ranking, fmt(stored), inc.username)
    p.ranking_written = true
    if inc.client then
      redis.call('HSET', p.events, inc.event_id, inc.fingerprint)
      p.events_written = true
    end
    local rank = rank_of(p.ranking, new)
    append(1, new, rank, old, previous_rank)
    if p.channel ~= '' then
      -- Built by hand: cjson prints numbers with 14 significant digits, too few for scores.
      if p.message_head == nil then
        p.message_head = '{"board":' .. cjson.encode(p.board)
          .. ',"period":' .. cjson.encode(p.period) .. ',"username":'
      end
      local message = p.message_head .. cjson.encode(inc.username)
        .. ',"previous_score":' .. json_number(old)
        .. ',"score":' .. fmt(new)
        .. ',"previous_rank":' .. json_number(previous_rank)
        .. ',"rank":' .. fmt(rank) .. '}'
      local pending = messages[p.channel]
      if pending == nil then
        pending = {}
        messages[p.channel] = pending
        channels[#channels + 1] = p.channel
      end
      pending[#pending + 1] = message
    end
  end
end

-- One message per board and call, a JSON array in application order: a batch of 500
-- increments costs subscribers one message to receive and decode, not 500.
for _, channel in ipairs(channels) do
  redis.call('PUBLISH', channel, '[' .. table.concat(messages[channel], ',') .. ']')
end

-- A ranking or event hash created here (after an empty load) must expire with the period,
-- and so must the loaded marker, which an empty load of a period that is not live gave a
-- short expiry (keys.py); GT never shortens it.
for g = 1, count do
  local p = periods[g]
  if p.expire_at ~= '0' then
    if p.ranking_written and redis.call('PTTL', p.ranking) == -1 then
      redis.call('PEXPIREAT', p.ranking, p.expire_at)
      redis.call('PEXPIREAT', p.loaded, p.expire_at, 'GT')
    end
    if p.events_written and redis.call('PTTL', p.events) == -1 then
      redis.call('PEXPIREAT', p.events, p.expire_at)
    end
  end
end

return out
