-- Acquire or renew a chain's writer lease.
-- KEYS[1] lease, KEYS[2] fence. ARGV[1] holder id, ARGV[2] TTL ms,
-- ARGV[3] "acquire" or "renew", ARGV[4] (renew) our fencing token.
-- acquire: take a free lease (or re-take our own) and return a new fencing
-- token (INCR; a missing fence starts at the clock, see below), or 0 when
-- another holder has it.
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
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- No fence: a new chain, or a Redis that lost its state (restarted
  -- empty, flushed, failed over to a replica that lagged). Tokens start
  -- over at the server clock in microseconds, above every token handed
  -- out before (acquisitions are far rarer than one a microsecond), so a
  -- writer that still holds one can never commit again.
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
end
return redis.call('INCR', KEYS[2])
