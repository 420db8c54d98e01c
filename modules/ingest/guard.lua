-- The guards of the scripts that write a chain's stream, cursor or finality
-- (put in front of commit, rewind, restore and finality.lua). Each returns the error reply that refuses the
-- write, or nil; a script starts with
--   local refused = fenced(KEYS[1], ARGV[1]) or moved(KEYS[2], ARGV[2])
--   if refused then return refused end

-- fenced: token is not the chain's fencing token any more (another
-- ingester took the lease).
local function fenced(fence, token)
  if redis.call('GET', fence) ~= token then
    return redis.error_reply('FENCED stale fencing token ' .. token)
  end
end

-- moved: the chain's cursor is not the one the writer read ('' = none).
local function moved(cursor, want)
  local cur = redis.call('GET', cursor)
  if not cur then cur = '' end
  if cur ~= want then
    return redis.error_reply('CURSOR moved to "' .. cur .. '"')
  end
end
