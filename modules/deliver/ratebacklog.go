package deliver

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/ops"
)

// Rate-limit backlog: an endpoint whose rate limit (its own or its plan's)
// is what holds its waiting messages back, for long enough to matter. The
// free plan's 10 webhooks/s against ~12 events/s grew a backlog of
// thousands with nothing said; now the start and the end of such an
// episode are each logged once, sent once as an operational webhook
// (endpoint.rate_limited, endpoint.rate_limit_cleared) and shown in the API
// and UI while it lasts.
//
// The rule, checked every rateCheckEvery by every deliver process:
//
//   - held: this process's lane for the endpoint waited on the limiter in
//     the last rateHoldGap (a held lane waits before nearly every send, at
//     least once a second for any limit of 1/s or more);
//   - it starts when the lane has been held continuously for rateHoldFor
//     and the endpoint has at least rateStartAfter of sending at its limit
//     waiting (backlog >= limit x 10 s, and at least rateStartMin): a burst
//     the limiter smooths out in a few seconds is not an episode;
//   - it ends when the backlog is below one second of sending (drained), or
//     no process was held for rateQuiet (not_held: the endpoint was
//     disabled or deleted, its breaker opened, its limit was raised).
//
// The backlog is the endpoint's pending and delivering messages in
// Postgres (all processes'), counted up to rateCountCap in each state.
// The episode lives in one Redis hash (hook.RateLimited, ratelimited.lua), so with several
// deliver processes the first to see it starts it and exactly one ends it:
// one log line and one webhook each per episode for the whole fleet. The
// field has no TTL: whichever process checks next ends an episode nobody
// holds any more, so a killed process leaves nothing behind for long.
const (
	rateCheckEvery = 2 * time.Second
	rateHoldGap    = 3 * time.Second
	rateHoldFor    = 10 * time.Second
	rateStartAfter = 10 * time.Second
	rateStartMin   = 10
	rateQuiet      = 3 * rateCheckEvery
	rateCountCap   = 100_000
)

var (
	//go:embed ratelimited.lua
	rateLimitedSrc    string
	rateLimitedScript = rueidis.NewLuaScript(rateLimitedSrc)
)

// rateRule is the rule's timing; the zero value is the constants above
// (tests shorten it with Options.rateRule).
type rateRule struct {
	check, holdGap, holdFor, startAfter, quiet time.Duration
}

func (r rateRule) orDefault() rateRule {
	if r.check == 0 {
		return rateRule{check: rateCheckEvery, holdGap: rateHoldGap, holdFor: rateHoldFor, startAfter: rateStartAfter, quiet: rateQuiet}
	}
	return r
}

// startAt is the backlog that starts an episode at rate events/s: what
// the limit lets out in startAfter.
func (r rateRule) startAt(rate int) int64 {
	return max(rateStartMin, int64(float64(rate)*r.startAfter.Seconds()))
}

// drainedBelow is the backlog under which an episode is over.
func drainedBelow(rate int) int64 { return max(1, int64(rate)) }

// noteHeld records that the lane waited on the limiter at now.
func (l *lane) noteHeld(now time.Time, gap time.Duration) {
	ms := now.UnixMilli()
	if ms-l.heldAt.Load() > gap.Milliseconds() {
		l.heldSince.Store(ms)
	}
	l.heldAt.Store(ms)
}

// heldLanes lists the endpoints whose lanes here waited on the limiter in
// the last gap, with since when they have been held without a break.
func (ls *lanes) heldLanes(now time.Time, gap time.Duration) map[string]time.Time {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := map[string]time.Time{}
	for id, l := range ls.by {
		if at := l.heldAt.Load(); at > 0 && now.UnixMilli()-at <= gap.Milliseconds() {
			out[id] = time.UnixMilli(l.heldSince.Load())
		}
	}
	return out
}

// rateBacklogLoop checks for rate-limit backlogs every check period.
func (m *Module) rateBacklogLoop(ctx context.Context) error {
	r := m.rateRule.orDefault()
	for {
		if !sleep.For(ctx, r.check) {
			return ctx.Err()
		}
		m.checkRateBacklogs(ctx, r)
	}
}

// checkRateBacklogs runs the rule once for the endpoints held here and the
// episodes under way anywhere.
func (m *Module) checkRateBacklogs(ctx context.Context, r rateRule) {
	now := m.now()
	held := m.lanes.heldLanes(now, r.holdGap)
	episodes, err := m.rdb.Do(ctx, m.rdb.B().Hgetall().Key(m.keys.RateLimited()).Build()).AsStrMap()
	if err != nil {
		if ctx.Err() == nil {
			m.redisOut.Fail("read rate-limit backlogs", err)
		}
		return
	}
	m.met.rateLimited.Set(float64(len(episodes)))
	// Only a lane held for holdFor may start an episode, and one under
	// way is in episodes: a lane the limiter held briefly (a burst) costs
	// no query.
	ids := make([]string, 0, len(held)+len(episodes))
	for id, since := range held {
		if _, ok := episodes[id]; ok || now.Sub(since) >= r.holdFor {
			ids = append(ids, id)
		} else {
			delete(held, id)
		}
	}
	for id := range episodes {
		if _, ok := held[id]; !ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	backlogs, err := m.rateBacklogs(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			m.pgOut.Fail("count rate-limit backlogs", err)
		}
		return
	}
	for _, id := range ids {
		st := rateCheck{id: id, backlog: backlogs[id], now: now}
		if since, ok := held[id]; ok {
			ep, err := m.endpoints.get(ctx, id)
			if err != nil || ep.missing || ep.rateLimit == 0 {
				continue // a later check sees it again
			}
			st.held, st.since, st.rate, st.app = true, since, ep.rateLimit, ep.appID
			if now.Sub(since) >= r.holdFor {
				st.start = r.startAt(ep.rateLimit)
			}
		} else if cur, err := hook.ParseRateLimited(episodes[id]); err == nil {
			st.rate, st.app, st.since = cur.RateLimit, cur.AppID, cur.Since
		}
		m.rateEpisode(ctx, st, r)
	}
}

// rateCheck is one endpoint's facts at one check.
type rateCheck struct {
	id, app string
	rate    int
	held    bool
	since   time.Time
	start   int64 // the backlog that starts an episode; 0 = may not start one
	backlog int64
	now     time.Time
}

// rateEpisode moves the endpoint's episode on (ratelimited.lua) and
// reports a start or an end: the one process the script answered
// "started" or "drained"/"not_held" to logs and emits.
func (m *Module) rateEpisode(ctx context.Context, st rateCheck, r rateRule) {
	heldArg := "0"
	if st.held {
		heldArg = "1"
	}
	res, err := rateLimitedScript.Exec(ctx, m.rdb, []string{m.keys.RateLimited()}, []string{
		st.id, strconv.FormatInt(st.backlog, 10), heldArg,
		strconv.FormatInt(st.start, 10), strconv.FormatInt(drainedBelow(st.rate), 10),
		strconv.FormatInt(r.quiet.Milliseconds(), 10), strconv.FormatInt(st.since.UnixMilli(), 10),
		strconv.Itoa(st.rate), st.app,
	}).AsStrSlice()
	if err != nil || len(res) != 2 {
		if ctx.Err() == nil {
			m.redisOut.Fail("note rate-limit backlog", fmt.Errorf("endpoint %s: %v (%d answers)", st.id, err, len(res)))
		}
		return
	}
	m.redisOut.OK()
	outcome := res[0]
	if outcome != "started" && outcome != ops.ClearedDrained && outcome != ops.ClearedNotHeld {
		return
	}
	ep, err := hook.ParseRateLimited(res[1])
	if err != nil {
		m.log.Warn("rate-limit backlog: unreadable episode", zapEndpoint(st.id), zapErr(err))
		return
	}
	if outcome == "started" {
		m.log.Warn("endpoint is held back by its rate limit: its backlog grows faster than the limit lets it out; raise the endpoint's or its plan's rate_limit, or expect webhooks to arrive late",
			zapEndpoint(st.id), zap.String("app", ep.AppID), zap.Int("rate_limit", ep.RateLimit),
			zap.Int64("backlog", ep.Backlog), zap.Time("since", ep.Since))
		m.emit(ctx, ops.RateLimitedEvent(ops.RateLimited{EndpointID: st.id, AppID: ep.AppID, RateLimit: ep.RateLimit, Backlog: ep.Backlog}, ep.Since, st.now))
		return
	}
	m.log.Info("endpoint no longer held back by its rate limit",
		zapEndpoint(st.id), zap.String("app", ep.AppID), zap.Int("rate_limit", ep.RateLimit), zap.String("reason", outcome),
		zap.Duration("for", st.now.Sub(ep.Since).Round(time.Second)), zap.Int64("max_backlog", ep.MaxBacklog), zap.Int64("backlog", ep.Backlog))
	m.emit(ctx, ops.RateLimitClearedEvent(ops.RateLimitCleared{EndpointID: st.id, AppID: ep.AppID, RateLimit: ep.RateLimit,
		Backlog: ep.Backlog, MaxBacklog: ep.MaxBacklog, Reason: outcome}, ep.Since, st.now))
}

// rateBacklogs counts each endpoint's messages due and not yet sent
// (pending, and delivering: claimed by a lane), up to rateCountCap each
// (a huge backlog costs a bounded scan every check, and "at least
// 100,000" says enough).
func (m *Module) rateBacklogs(ctx context.Context, ids []string) (map[string]int64, error) {
	// Two capped counts, each a range of message_states_waiting
	// (endpoint_id, state, ...) (00086, 00087): the cap holds per state, and
	// neither walks the endpoint's delivered history.
	rows, err := m.pool.Query(ctx, `SELECT e.id,
			(SELECT count(*) FROM (SELECT 1 FROM message_states s WHERE s.endpoint_id = e.id AND s.state = 'pending' LIMIT $2) p) +
			(SELECT count(*) FROM (SELECT 1 FROM message_states s WHERE s.endpoint_id = e.id AND s.state = 'delivering' LIMIT $2) d)
		FROM unnest($1::text[]) AS e(id)`, ids, rateCountCap)
	if err != nil {
		return nil, fmt.Errorf("count backlogs of %d endpoints: %w", len(ids), err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(ids))
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count backlogs of %d endpoints: %w", len(ids), err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count backlogs of %d endpoints: %w", len(ids), err)
	}
	m.pgOut.OK()
	return out, nil
}
