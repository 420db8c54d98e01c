-- Set a chain's cursor in a Redis that lost it (from the durable copy in
-- Postgres), so that commits go on from there. The window is dropped: it
-- described blocks Redis no longer has.
-- KEYS[1] fence, KEYS[2] cursor, KEYS[3] window.
-- ARGV[1] fencing token, ARGV[2] the cursor ("number:hash").
local refused = fenced(KEYS[1], ARGV[1])
if refused then return refused end
local cur = redis.call('GET', KEYS[2])
if cur then
  return redis.error_reply('CURSOR moved to "' .. cur .. '"')
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[2])
return 1
