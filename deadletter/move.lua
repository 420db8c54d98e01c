-- Dead-letter a stream entry: append the letter and acknowledge the entry,
-- atomically.
-- KEYS[1] events stream, KEYS[2] dead-letter stream.
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] dead-letter stream maxlen
-- (approximate), then the letter's field-value pairs.
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
