-- Acquire or renew a chain's writer lease.
-- KEYS[1] lease, KEYS[2] fence. ARGV[1] holder id, ARGV[2] TTL ms,
-- ARGV[3] "acquire" or "renew", ARGV[4] (renew) our fencing token.
-- acquire: take a free lease (or re-take our own) and return a new fencing
-- token (INCR), or 0 when another holder has it.
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
return redis.call('INCR', KEYS[2])
