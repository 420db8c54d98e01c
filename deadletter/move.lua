-- Dead-letter a stream entry: acknowledge it and, if it was still pending
-- (a second process that gave up on the same entry finds it acknowledged),
-- append the letter and drop its try count, atomically.
-- KEYS[1] events stream, KEYS[2] dead-letter stream, KEYS[3] try counts.
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] dead-letter stream maxlen
-- (approximate), then the letter's field-value pairs.
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if n == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return n
