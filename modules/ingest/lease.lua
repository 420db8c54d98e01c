-- Acquire or renew a chain's writer lease.
-- KEYS[1] lease, KEYS[2] fence. ARGV[1] holder id, ARGV[2] TTL ms,
-- ARGV[3] "acquire" or "renew", ARGV[4] (renew) our fencing token.
-- acquire: take a free lease (or re-take our own) and return a new fencing
-- token (INCR, never below the clock, see below), or 0 when another
-- holder has it.
-- renew: extend our lease and return 1; when it lapsed (expired, nobody
-- took it since: the fence is still our token) take it again and return 2;
-- return 0 when it is no longer ours.
local holder = redis.call('GET', KEYS[1])
if ARGV[3] == 'renew' then
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
  if not holder and redis.call('GET', KEYS[2]) == ARGV[4] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 2
  end
  return 0
end
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- A token is never below the server clock in microseconds. Redis may lose
-- the fence (restarted empty, flushed) or go back to an older one (an old
-- snapshot, a failover to a replica that lagged); counting on from there
-- would hand out again a token a writer from before still holds. The
-- clock is above every token handed out before (acquisitions are far
-- rarer than one a microsecond), so such a writer can never commit again.
local t = redis.call('TIME')
local now = tonumber(t[1] .. string.format('%06d', tonumber(t[2])))
local f = redis.call('INCR', KEYS[2])
if f < now then
  redis.call('SET', KEYS[2], string.format('%.0f', now))
  f = now
end
return f
