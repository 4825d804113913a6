-- Shared by every ranking script (prepended to each one before it is registered): the
-- score encoding and rank reads, then the write scripts' shared steps.
--
-- Scores are stored so that ascending member order is the leaderboard order: NEGATED on
-- DESC boards (SIGN = -1, the default), as they are on ASC boards (SIGN = 1); ties by
-- username ascending (Redis orders equal scores by member bytes). On EARLIEST boards a
-- member is 16 hex digits of the instant the player reached the score, then the username,
-- so equal scores list earliest first and every rank is a position (docs/boards.md).
-- A read script of a board other than DESC/SHARED is told so by `use_board`.

local SIGN, EARLIEST = -1, false
local INSTANT_DIGITS = 16

local function use_board(sign, earliest)
  SIGN = tonumber(sign)
  EARLIEST = earliest == '1'
end

-- A member's username: behind its instant on EARLIEST boards.
local function username_of(member)
  if EARLIEST then
    return string.sub(member, INSTANT_DIGITS + 1)
  end
  return member
end

-- Lua's tostring and `..` format with %.14g, which corrupts integers above 1e14.
local function fmt(number)
  return string.format('%.17g', number)
end

-- A score from a stored member score; never -0, which would print as "-0".
local function score_of(stored)
  local score = SIGN * tonumber(stored)
  if score == 0 then
    return 0
  end
  return score
end

-- A stored member score from a score; never -0.
local function stored_of(score)
  local stored = SIGN * score
  if stored == 0 then
    return 0
  end
  return stored
end

-- Standard competition rank: 1 + the number of players with a strictly better score.
local function rank_of(ranking, score)
  return 1 + redis.call('ZCOUNT', ranking, '-inf', '(' .. fmt(SIGN * score))
end

-- Byte order, as Redis orders members (Lua's `<` follows the server's locale): whether
-- `a` sorts before `b` (or is `b`, with `or_equal`).
local function bytes_before(a, b, or_equal)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  if or_equal then
    return #a <= #b
  end
  return #a < #b
end

-- How many members of the tie group at indexes first .. first + ties - 1 of `ranking` sort
-- before `member` (or are `member`, with `or_equal`): a binary search by index.
local function tied_before(ranking, first, ties, member, or_equal)
  local low, high = 0, ties
  while low < high do
    local middle = math.floor((low + high) / 2)
    local at = redis.call('ZRANGE', ranking, first + middle, first + middle)[1]
    if bytes_before(at, member, or_equal) then
      low = middle + 1
    else
      high = middle
    end
  end
  return low
end

-- Appends username, score, rank of the players at positions start..stop to `out`.
-- Only the first entry costs a ZCOUNT: a later one shares the previous rank on a tie,
-- otherwise its rank is its position (always, on EARLIEST boards: ranks are unique).
local function append_page(ranking, start, stop, out)
  local entries = redis.call('ZRANGE', ranking, start, stop, 'WITHSCORES')
  local rank, previous
  for i = 1, #entries, 2 do
    local score = score_of(entries[i + 1])
    if EARLIEST then
      rank = start + (i + 1) / 2
    elseif previous == nil then
      rank = rank_of(ranking, score)
    elseif score ~= previous then
      rank = start + (i + 1) / 2
    end
    previous = score
    out[#out + 1] = username_of(entries[i])
    out[#out + 1] = score
    out[#out + 1] = rank
  end
  return out
end


-- The write scripts' shared steps (increment.lua, write.lua). Each period of a batch is a
-- table with its keys (ranking, events: the current event-id bucket, events_before: the
-- one before it, loaded), channel, board, period, expire_at, events_ttl (ms the current
-- bucket lives from its creation: keys.py, "idempotency window") and `seen` (client event
-- ids of the batch so far); each write a table from `decode_writes`.

-- Totals and scores stay within +-MAX_EXACT, the integers a double (and cjson) holds exactly.
local MAX_EXACT = 9007199254740991

-- The first of periods 1..count without its loaded marker (nil: all loaded).
local function first_unloaded(periods, count)
  for g = 1, count do
    if redis.call('EXISTS', periods[g].loaded) == 0 then
      return g
    end
  end
  return nil
end

-- The writes of the batch's JSON argument: each [period g, username, value, 1 when the
-- event id is the client's, event id, fingerprint of a client's id ('' when not), and for
-- a writer's call: writer id, sequence, call number (write_batches.py)].
local function decode_writes(json, periods)
  local writes = {}
  for i, item in ipairs(cjson.decode(json)) do
    writes[i] = {
      period = periods[item[1]],
      username = item[2],
      value = item[3],
      client = item[4] == 1,
      event_id = item[5],
      fingerprint = item[6],
      writer = item[7],
      sequence = item[8],
      call = item[9],
    }
  end
  return writes
end

-- Idempotency per writer (docs/reliability.md): a writer's call (its writes are adjacent
-- and share writer, sequence and call number) is a replay when any period it touches here
-- has recorded its sequence or a later one for that writer (`p.writers`, hash: writer ->
-- last sequence); then none of its writes applies (`replayed[i]` = true). A call that
-- applies notes its sequence in `p.sequences`, for the calls after it in the batch, and in
-- `p.applied_sequences` for `record_writers`. Gaps are fine: only "not above the last one"
-- is a replay.
local function check_writers(writes)
  local replayed, i = {}, 1
  while i <= #writes do
    local w, last = writes[i], i
    if w.writer then
      while writes[last + 1] and writes[last + 1].call == w.call
        and writes[last + 1].writer == w.writer and writes[last + 1].sequence == w.sequence do
        last = last + 1
      end
      local replay = false
      for j = i, last do
        local p = writes[j].period
        p.sequences = p.sequences or {}
        local known = p.sequences[w.writer]
        if known == nil then
          known = tonumber(redis.call('HGET', p.writers, w.writer) or -1)
          p.sequences[w.writer] = known
        end
        replay = replay or w.sequence <= known
      end
      for j = i, last do
        if replay then
          replayed[j] = true
        else
          local p = writes[j].period
          p.sequences[w.writer] = w.sequence
          p.applied_sequences = p.applied_sequences or {}
          p.applied_sequences[w.writer] = w.sequence
        end
      end
    end
    i = last + 1
  end
  return replayed
end

-- Stores the sequences `check_writers` noted for period `p`; the hash expires with the
-- period, as the ranking does (expire_at '0': never).
local function record_writers(p)
  if p.applied_sequences == nil then
    return
  end
  for writer, sequence in pairs(p.applied_sequences) do
    redis.call('HSET', p.writers, writer, fmt(sequence))
  end
  if p.expire_at ~= '0' then
    redis.call('PEXPIREAT', p.writers, p.expire_at, 'NX')  -- NX: set once, when created
  end
end

-- Pass 1's event-id check of write `w`: 'replay' when its client event id is recorded
-- (earlier in the batch or before) for this same write, 'reused' when for another one,
-- nil when new (then noted as seen in the batch) or not the client's.
local function check_event_id(p, w)
  if not w.client then
    return nil
  end
  -- The window's two buckets: an id is remembered from its write until its bucket expires.
  local recorded = p.seen[w.event_id] or redis.call('HGET', p.events, w.event_id)
    or redis.call('HGET', p.events_before, w.event_id)
  if recorded then
    if recorded ~= w.fingerprint then
      return 'reused'
    end
    return 'replay'
  end
  p.seen[w.event_id] = w.fingerprint
  return nil
end

-- Appends one write's outcome to the reply: applied, score, rank, had score, previous
-- score, previous rank (`old` nil: no score before).
local function append_outcome(out, applied, score, rank, old, previous_rank)
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

-- Queues the change message of a write to period `p` on `changes` ({messages = {},
-- channels = {}}), when the period has a channel. The format is changes.py's codec.
local function queue_change(changes, p, username, old, new, previous_rank, rank)
  if p.channel == '' then
    return
  end
  -- Built by hand: cjson prints numbers with 14 significant digits, too few for scores.
  if p.message_head == nil then
    p.message_head = '{"board":' .. cjson.encode(p.board)
      .. ',"period":' .. cjson.encode(p.period) .. ',"username":'
  end
  local message = p.message_head .. cjson.encode(username)
    .. ',"previous_score":' .. json_number(old)
    .. ',"score":' .. fmt(new)
    .. ',"previous_rank":' .. json_number(previous_rank)
    .. ',"rank":' .. fmt(rank) .. '}'
  local pending = changes.messages[p.channel]
  if pending == nil then
    pending = {}
    changes.messages[p.channel] = pending
    changes.channels[#changes.channels + 1] = p.channel
  end
  pending[#pending + 1] = message
end

-- One message per board and call, a JSON array in application order: a batch of 500
-- writes costs subscribers one message to receive and decode, not 500.
local function publish_changes(changes)
  for _, channel in ipairs(changes.channels) do
    redis.call('PUBLISH', channel, '[' .. table.concat(changes.messages[channel], ',') .. ']')
  end
end

-- A ranking created by a write (after an empty load) must expire with the period, and
-- so must the loaded marker, which an empty load of a period that is not live gave a
-- short expiry (keys.py); GT never shortens it. An event-id bucket expires with the
-- window, whatever the period (NX: set once, when the bucket is created).
local function expire_written(p)
  if p.events_written then
    redis.call('PEXPIRE', p.events, p.events_ttl, 'NX')
  end
  if p.expire_at == '0' then
    return
  end
  if p.ranking_written and redis.call('PTTL', p.ranking) == -1 then
    redis.call('PEXPIREAT', p.ranking, p.expire_at)
    redis.call('PEXPIREAT', p.loaded, p.expire_at, 'GT')
  end
end
