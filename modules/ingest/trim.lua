-- trim_events keeps a chain's events stream near maxlen entries without
-- ever dropping one the process consumer group still needs. With that
-- group, once the stream is over maxlen, only entries below its floor go:
-- its lowest pending entry, else the last entry it has read. Without the
-- group (nobody reads yet), plain MAXLEN. Unread entries beyond maxlen are
-- held back by ingest (backpressure), not trimmed.
-- events_group is set by the Go side, in front of this file.
local function trim_events(stream, maxlen)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if ok then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == events_group then
        if redis.call('XLEN', stream) <= tonumber(maxlen) then
          return
        end
        local floor = f['last-delivered-id']
        if tonumber(f['pending']) > 0 then
          floor = redis.call('XPENDING', stream, events_group)[2]
        end
        redis.call('XTRIM', stream, 'MINID', '~', floor)
        return
      end
    end
  end
  redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen)
end
