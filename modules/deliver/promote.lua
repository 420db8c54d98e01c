-- Moves due retries from the schedule (sorted set, score = due time in ms)
-- to the jobs stream, atomically, so a crash never loses one.
-- KEYS[1] retries zset, KEYS[2] jobs stream (same hash tag)
-- ARGV[1] now in ms, ARGV[2] max entries to move
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local sep = string.find(m, ' ', 1, true)
  redis.call('XADD', KEYS[2], '*', 'message_id', string.sub(m, 1, sep - 1), 'endpoint_id', string.sub(m, sep + 1))
  redis.call('ZREM', KEYS[1], m)
end
return #due
