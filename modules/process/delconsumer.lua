-- Delete consumer ARGV[2] of group ARGV[1] on stream KEYS[1] if it has no
-- pending entry (DELCONSUMER would drop them for good). Returns 1 if it did.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
