-- Replay a dead letter: put its original fields (those named "f:<field>")
-- back on the events stream and delete the letter, atomically.
-- KEYS[1] dead-letter stream, KEYS[2] events stream. ARGV[1] letter id.
-- Returns 1, or 0 when the letter is gone.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = e[1][2]
local out = {}
for i = 1, #f, 2 do
  if string.sub(f[i], 1, 2) == 'f:' then
    out[#out + 1] = string.sub(f[i], 3)
    out[#out + 1] = f[i + 1]
  end
end
if #out == 0 then return redis.error_reply('dead letter has no original fields') end
redis.call('XADD', KEYS[2], '*', unpack(out))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
