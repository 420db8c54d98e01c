package ui

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/message"
)

// chainStatus is one chain's row on the dashboard, read (internal/chainstatus)
// from the keys the ingest module writes under `<prefix>{<chain_id>}:`: the cursor
// ("<number>:<hash>" of the last committed block), the lease and the events
// stream. Ingest does not publish the chain's head, so the lag behind the
// head is shown when the `:head` key exists (ingest writes it, best effort,
// expiring); otherwise "not known", never a made-up number. Next to it: the
// newest published event's block and when it was published (how fresh the
// stream is).
type chainStatus struct {
	ID        uint64
	Name      string
	Committed uint64 // last block committed to the events stream (cursor)
	HasCursor bool
	Head      uint64 // newest head seen, when a head key exists
	HasHead   bool
	Lag       uint64 // Head - Committed, only when HasHead
	// The node's safe and finalized heads as ingest published them
	// (`:finality`, "<safe cursor>|<finalized cursor>"), when reported.
	Safe, Finalized       uint64
	HasSafe, HasFinalized bool
	// The newest entry of the events stream: its block and when ingest
	// published it (the stream entry id's time).
	LastBlock uint64
	LastAt    time.Time
	HasLast   bool
	Holder    string  // lease holder (the active ingester)
	Rate      float64 // events/s published, measured between two dashboard reads
	HasRate   bool
	Err       string
}

// rateSample remembers a stream's entries-added counter so the next read
// can turn it into events per second.
type rateSample struct {
	added uint64
	at    time.Time
}

type rates struct {
	mu sync.Mutex
	m  map[uint64]rateSample
	r  map[uint64]float64
}

// observe records added for chain and returns the rate since the previous
// sample, when one is at least a second old.
func (r *rates) observe(chain, added uint64, now time.Time) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m, r.r = map[uint64]rateSample{}, map[uint64]float64{}
	}
	prev, ok := r.m[chain]
	if !ok {
		r.m[chain] = rateSample{added, now}
		return 0, false
	}
	dt := now.Sub(prev.at)
	if dt < time.Second {
		v, ok := r.r[chain]
		return v, ok
	}
	rate := 0.0
	if added >= prev.added {
		rate = float64(added-prev.added) / dt.Seconds()
	}
	r.m[chain] = rateSample{added, now}
	r.r[chain] = rate
	return rate, true
}

func (u *UI) chainStatuses(ctx context.Context) []chainStatus {
	out := make([]chainStatus, 0, len(u.chains))
	for _, ch := range u.chains {
		st := chainStatus{ID: ch.ID, Name: ch.Name}
		cs, err := u.status.Read(ctx, ch.ID)
		if err != nil {
			st.Err = "Redis: " + err.Error()
		}
		st.Committed, st.HasCursor = cs.Cursor.Number, cs.Cursor.Set
		st.Head, st.HasHead = cs.Head, cs.HasHead
		st.Lag, _ = cs.Lag()
		st.Safe, st.HasSafe = cs.Finality.Safe.Number, cs.Finality.Safe.Set
		st.Finalized, st.HasFinalized = cs.Finality.Finalized.Number, cs.Finality.Finalized.Set
		st.Holder = cs.Lease
		if cs.HasAdded {
			st.Rate, st.HasRate = u.rates.observe(ch.ID, cs.Added, time.Now())
		}
		st.LastBlock, st.LastAt, st.HasLast = cs.LastBlock, cs.LastAt, cs.HasLast
		out = append(out, st)
	}
	return out
}

// chart is the deliveries-per-minute bar chart with the success rate as a
// line, precomputed as SVG coordinates (no script, no inline style).
type chart struct {
	Width, Height int
	Bars          []bar
	Line          string // polyline points of the success rate
	Max           int64
	Total         int64
	Succeeded     int64
	Empty         bool
}

type bar struct {
	X, Y, W, H int
	Label      string
}

const chartMinutes = 30

func buildChart(mins []message.Minute, now time.Time) chart {
	c := chart{Width: 300, Height: 100}
	by := map[int64]message.Minute{}
	for _, m := range mins {
		by[m.At.Unix()/60] = m
		c.Total += m.Total
		c.Succeeded += m.Succeeded
		c.Max = max(c.Max, m.Total)
	}
	c.Empty = c.Total == 0
	w := c.Width / chartMinutes
	end := now.Unix() / 60
	var pts []string
	for i := 0; i < chartMinutes; i++ {
		at := end - int64(chartMinutes-1-i)
		m := by[at]
		h := 0
		if c.Max > 0 {
			h = int(m.Total * int64(c.Height-10) / c.Max)
		}
		x := i * w
		c.Bars = append(c.Bars, bar{X: x + 1, Y: c.Height - h, W: w - 2, H: h,
			Label: fmt.Sprintf("%s: %d deliveries, %d succeeded", time.Unix(at*60, 0).UTC().Format("15:04"), m.Total, m.Succeeded)})
		if m.Total > 0 {
			y := c.Height - int(m.Succeeded*int64(c.Height-10)/m.Total)
			pts = append(pts, fmt.Sprintf("%d,%d", x+w/2, y))
		}
	}
	c.Line = strings.Join(pts, " ")
	return c
}

type dashData struct {
	Chains   []chainStatus
	Chart    chart
	Failures []message.Failure
	Disabled []endpoint.Disabled
	HeldBack []endpoint.HeldBack // endpoints held back by their rate limit (deliver's episodes)
	Updated  time.Time
}

func (u *UI) dashboardData(c echo.Context) (dashData, error) {
	ctx := c.Request().Context()
	scope := sess(c).Scope()
	d := dashData{Updated: time.Now()}
	d.Chains = u.chainStatuses(ctx)
	if !sess(c).IsAdmin() {
		for i := range d.Chains {
			d.Chains[i].Holder = "" // the ingester's host and pid are for admins
		}
	}
	mins, err := message.AttemptsPerMinute(ctx, u.pool, scope, d.Updated.Add(-chartMinutes*time.Minute))
	if err != nil {
		return d, err
	}
	d.Chart = buildChart(mins, d.Updated)
	if d.Failures, err = message.RecentFailures(ctx, u.pool, scope, 10); err != nil {
		return d, err
	}
	if d.Disabled, err = endpoint.RecentlyDisabled(ctx, u.pool, scope, 10); err != nil {
		return d, err
	}
	// A view from Redis: trouble there leaves the list out (the chains
	// table already says Redis is away).
	d.HeldBack, _ = endpoint.RateLimitedIn(ctx, u.pool, u.redis, u.keys, scope, 10)
	return d, nil
}

func (u *UI) dashboard(c echo.Context) error {
	d, err := u.dashboardData(c)
	if err != nil {
		return u.fail(c, err)
	}
	return u.render(c, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// dashboardLive is the part of the dashboard htmx refreshes every few seconds.
func (u *UI) dashboardLive(c echo.Context) error {
	d, err := u.dashboardData(c)
	if err != nil {
		return u.fail(c, err)
	}
	return u.renderPart(c, http.StatusOK, "dashboard", "live", view{Data: d})
}
