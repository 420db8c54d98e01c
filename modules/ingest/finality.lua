-- Publish the chain's verified safe and finalized blocks as one stream entry
-- (process applies it in stream order) and remember them, fenced by the lease.
-- KEYS[1] fence, KEYS[2] events stream, KEYS[3] finality key.
-- ARGV[1] fencing token, ARGV[2] safe ("number:hash" or ""), ARGV[3] finalized,
-- ARGV[4] the finality key's record (hook.Finality.Record).
local refused = fenced(KEYS[1], ARGV[1])
if refused then return refused end
redis.call('XADD', KEYS[2], '*', 'type', 'finality', 'safe', ARGV[2], 'finalized', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
return 1
