-- One endpoint's rate-limit backlog episode, decided atomically across
-- deliver processes (ratebacklog.go): the first process to see a backlog
-- starts the episode, exactly one ends it.
-- KEYS[1] the hash of episodes (hook.RateLimitedName); field = endpoint id,
--         value "<since ms>:<held ms>:<backlog>:<max backlog>:<rate>:<app>"
--         (hook.RateLimited)
-- ARGV[1] endpoint id
-- ARGV[2] now, ms
-- ARGV[3] backlog now (messages due and not yet sent)
-- ARGV[4] 1 when this process's limiter held the endpoint just now, else 0
-- ARGV[5] start threshold: the backlog that starts an episode (0 = this
--         process may not start one: its limiter has not held long enough)
-- ARGV[6] drained: an episode ends when the backlog is below this
-- ARGV[7] quiet ms: an episode ends when no process was held for this long
-- ARGV[8] the episode's start, ms (when this process's limiter began holding)
-- ARGV[9] rate limit, events/s
-- ARGV[10] app id
-- Returns {outcome, value}: outcome "none" (no episode), "started", "held"
-- (it goes on), "drained" or "not_held" (it ended; the field is gone).
local now = tonumber(ARGV[2])
local backlog = tonumber(ARGV[3])
local held = ARGV[4] == '1'
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  local start = tonumber(ARGV[5])
  if held and start > 0 and backlog >= start then
    v = ARGV[8] .. ':' .. ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[3] .. ':' .. ARGV[9] .. ':' .. ARGV[10]
    redis.call('HSET', KEYS[1], ARGV[1], v)
    return {'started', v}
  end
  return {'none', ''}
end
local since, heldat, _, mx, rate, app = string.match(v, '^(%d+):(%d+):(%d+):(%d+):(%d+):(.*)$')
if not since then
  redis.call('HDEL', KEYS[1], ARGV[1]) -- not ours to understand: forget it
  return {'none', ''}
end
heldat, mx = tonumber(heldat), tonumber(mx)
if held then
  heldat = now
  rate = ARGV[9]
end
if backlog > mx then mx = backlog end
v = since .. ':' .. string.format('%d', heldat) .. ':' .. ARGV[3] .. ':' .. string.format('%d', mx) .. ':' .. rate .. ':' .. app
if backlog < tonumber(ARGV[6]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {'drained', v}
end
if now - heldat > tonumber(ARGV[7]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {'not_held', v}
end
redis.call('HSET', KEYS[1], ARGV[1], v)
return {'held', v}
