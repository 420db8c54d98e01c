-- GCRA rate limit shared by every deliver process: one key per endpoint.
-- KEYS[1] theoretical arrival time (microseconds, Redis clock)
-- ARGV[1] emission interval in microseconds (1e6 / rate)
-- ARGV[2] burst tolerance in microseconds
-- Returns 0 when the send may happen now, else microseconds to wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return allow_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return 0
