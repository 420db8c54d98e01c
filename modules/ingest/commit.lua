-- Commit blocks to a chain's events stream atomically.
-- KEYS[1] fence, KEYS[2] cursor, KEYS[3] events stream, KEYS[4] window,
--   then per block: KEYS blk (dedup), blog (published entries), trimblog (the
--   blog to delete; the block's own blog key when none).
-- ARGV[1] fencing token, ARGV[2] expected cursor ("" = no cursor yet),
-- ARGV[3] stream maxlen (approximate; see trim.lua), ARGV[4] dedup TTL seconds,
-- ARGV[5] blog TTL seconds, ARGV[6] number of blocks, then per block:
--   number, hash, parent, store blog (0/1), number to trim from the window
--   ("" = none; the window keeps more blocks than their blogs), event count, then count x (id, event json).
-- Returns {published entries, blocks skipped as duplicates}.
local refused = fenced(KEYS[1], ARGV[1]) or moved(KEYS[2], ARGV[2])
if refused then return refused end
local ttl = ARGV[4]
local blobttl = ARGV[5]
local n = tonumber(ARGV[6])
local a = 7
local k = 5
local published = 0
local skipped = 0
local last = ARGV[2] -- the cursor, as the guard found it
for _ = 1, n do
  local num, hash, parent, store, trim = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local ne = tonumber(ARGV[a + 5])
  a = a + 6
  local blk, blog, trimblog = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  k = k + 3
  if redis.call('SET', blk, '1', 'NX', 'EX', ttl) then
    local lines = {}
    for i = 1, ne do
      redis.call('XADD', KEYS[3], '*', 'id', ARGV[a], 'type', 'log', 'event', ARGV[a + 1])
      if store == '1' then
        lines[i] = ARGV[a + 1]
      end
      a = a + 2
    end
    if store == '1' and ne > 0 then
      redis.call('SET', blog, table.concat(lines, '\n'), 'EX', blobttl)
    end
    published = published + ne
  else
    a = a + 2 * ne
    skipped = skipped + 1
  end
  redis.call('HSET', KEYS[4], num, hash .. ':' .. parent)
  if trim ~= '' then
    redis.call('HDEL', KEYS[4], trim)
  end
  if trimblog ~= blog then
    redis.call('DEL', trimblog)
  end
  last = num .. ':' .. hash
end
if published > 0 then
  trim_events(KEYS[3], ARGV[3])
end
redis.call('SET', KEYS[2], last)
return {published, skipped}
