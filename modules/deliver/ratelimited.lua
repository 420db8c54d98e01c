-- One endpoint's rate-limit backlog episode, decided atomically across
-- deliver processes (ratebacklog.go): the first process to see a backlog
-- starts the episode, exactly one ends it.
-- KEYS[1] the hash of episodes (hook.RateLimitedName); field = endpoint id,
--         value "<since ms>:<held ms>:<backlog>:<max backlog>:<rate>:<app>"
--         (hook.RateLimited)
-- ARGV[1] endpoint id
-- ARGV[2] backlog now (messages due and not yet sent)
-- ARGV[3] 1 when this process's limiter held the endpoint just now, else 0
-- ARGV[4] start threshold: the backlog that starts an episode (0 = this
--         process may not start one: its limiter has not held long enough)
-- ARGV[5] drained: an episode ends when the backlog is below this
-- ARGV[6] quiet ms: an episode ends when no process was held for this long
-- ARGV[7] the episode's start, ms (when this process's limiter began holding)
-- ARGV[8] rate limit, events/s
-- ARGV[9] app id
-- The time is Redis's (as in gcra.lua): deliver hosts' clocks may disagree
-- by more than the quiet period.
-- Returns {outcome, value}: outcome "none" (no episode), "started", "held"
-- (it goes on), "drained" or "not_held" (it ended; the field is gone).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local backlog = tonumber(ARGV[2])
local held = ARGV[3] == '1'
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  local start = tonumber(ARGV[4])
  if held and start > 0 and backlog >= start then
    v = ARGV[7] .. ':' .. string.format('%d', now) .. ':' .. ARGV[2] .. ':' .. ARGV[2] .. ':' .. ARGV[8] .. ':' .. ARGV[9]
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
  rate = ARGV[8]
end
if backlog > mx then mx = backlog end
v = since .. ':' .. string.format('%d', heldat) .. ':' .. ARGV[2] .. ':' .. string.format('%d', mx) .. ':' .. rate .. ':' .. app
if backlog < tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {'drained', v}
end
if now - heldat > tonumber(ARGV[6]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {'not_held', v}
end
redis.call('HSET', KEYS[1], ARGV[1], v)
return {'held', v}
