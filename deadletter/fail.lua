-- Count one more failure for each entry ARGV[2..] in the hash KEYS[1]
-- (expiring ARGV[1] seconds after the last) and return the highest count.
local top = 0
for i = 2, #ARGV do
  local n = redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  if n > top then top = n end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return top
