-- How many players have a score.
-- KEYS: ranking, loaded marker. Returns {0} when not loaded, else {1, count}.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
return {1, redis.call('ZCARD', KEYS[1])}
