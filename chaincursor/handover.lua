-- The history handover (handover.go): bump the chain's endpoint generation
-- and read its committed cursor in one step, so every events entry added
-- after this is of a block after the returned cursor.
-- KEYS[1] the generation (<prefix>{<chain>}:epgen), KEYS[2] the cursor.
redis.call('INCR', KEYS[1])
local c = redis.call('GET', KEYS[2])
if not c then return '' end
return c
