-- Unwind orphaned blocks after a reorg, atomically.
-- KEYS[1] fence, KEYS[2] cursor, KEYS[3] events stream, KEYS[4] window,
--   then per orphaned block: KEYS blk (dedup), blog.
-- ARGV[1] fencing token, ARGV[2] expected cursor, ARGV[3] new cursor
-- (the common ancestor, "number:hash"), ARGV[4] stream maxlen,
-- ARGV[5] number of orphaned blocks, then their numbers, then the count of
-- removal entries, then count x (id, event json) published as log.removed, then
-- the count of whole blocks retracted (deep reorg), then each "number:hash"
-- published as block.removed.
local refused = fenced(KEYS[1], ARGV[1]) or moved(KEYS[2], ARGV[2])
if refused then return refused end
local n = tonumber(ARGV[5])
local a = 6
for i = 1, n do
  redis.call('HDEL', KEYS[4], ARGV[a])
  -- Forget the block's dedup key: should the chain flip back to it, it
  -- must be published again.
  redis.call('DEL', KEYS[3 + 2 * i], KEYS[4 + 2 * i])
  a = a + 1
end
local ne = tonumber(ARGV[a])
a = a + 1
for _ = 1, ne do
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[a], 'type', 'log.removed', 'event', ARGV[a + 1])
  a = a + 2
end
-- Orphaned blocks older than the kept entries: retracted as whole blocks.
local nb = tonumber(ARGV[a])
a = a + 1
for _ = 1, nb do
  redis.call('XADD', KEYS[3], '*', 'type', 'block.removed', 'block', ARGV[a])
  a = a + 1
end
if ne + nb > 0 then
  trim_events(KEYS[3], ARGV[4])
end
redis.call('SET', KEYS[2], ARGV[3])
return ne
