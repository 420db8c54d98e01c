package ui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// chainStatus is one chain's row on the dashboard, read from the keys the
// ingest module writes under `<prefix>{<chain_id>}:`: the cursor
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
		res := u.redis.DoMulti(ctx,
			u.redis.B().Get().Key(u.keys.Chain(ch.ID, "cursor")).Build(),
			u.redis.B().Get().Key(u.keys.Chain(ch.ID, "head")).Build(),
			u.redis.B().Get().Key(u.keys.Chain(ch.ID, "lease")).Build(),
			u.redis.B().XinfoStream().Key(u.keys.Events(ch.ID)).Build(),
			u.redis.B().Xrevrange().Key(u.keys.Events(ch.ID)).End("+").Start("-").Count(1).Build(),
			u.redis.B().Get().Key(u.keys.Chain(ch.ID, "finality")).Build(),
		)
		if f, err := res[5].ToString(); err == nil {
			safe, final, _ := strings.Cut(f, "|")
			for _, c := range []struct {
				s   string
				n   *uint64
				has *bool
			}{{safe, &st.Safe, &st.HasSafe}, {final, &st.Finalized, &st.HasFinalized}} {
				num, _, _ := strings.Cut(c.s, ":")
				if n, err := strconv.ParseUint(num, 10, 64); err == nil {
					*c.n, *c.has = n, true
				}
			}
		}
		if cur, err := res[0].ToString(); err == nil {
			num, _, _ := strings.Cut(cur, ":")
			if n, err := strconv.ParseUint(num, 10, 64); err == nil {
				st.Committed, st.HasCursor = n, true
			}
		} else if !rueidis.IsRedisNil(err) {
			st.Err = "Redis: " + err.Error()
		}
		if h, err := res[1].ToString(); err == nil {
			num, _, _ := strings.Cut(h, ":")
			if n, err := strconv.ParseUint(num, 10, 64); err == nil {
				st.Head, st.HasHead = n, true
			}
		}
		if st.HasHead && st.HasCursor && st.Head > st.Committed {
			st.Lag = st.Head - st.Committed
		}
		if l, err := res[2].ToString(); err == nil {
			st.Holder = l
		}
		if info, err := res[3].AsMap(); err == nil {
			if v, ok := info["entries-added"]; ok {
				if n, err := v.AsInt64(); err == nil {
					st.Rate, st.HasRate = u.rates.observe(ch.ID, uint64(n), time.Now())
				}
			}
		}
		if entries, err := res[4].AsXRange(); err == nil && len(entries) > 0 {
			if ev, err := hook.ParseEntry(entries[0].FieldValues); err == nil {
				st.LastBlock, st.HasLast = ev.Block.Number, true
				// Ingest appends with XADD *: the entry id is its time in ms.
				ms, _, _ := strings.Cut(entries[0].ID, "-")
				if n, err := strconv.ParseInt(ms, 10, 64); err == nil && n > 0 {
					st.LastAt = time.UnixMilli(n)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// minute is one bar of the deliveries chart.
type minute struct {
	At        time.Time
	Total     int64
	Succeeded int64
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

func buildChart(mins []minute, now time.Time) chart {
	c := chart{Width: 300, Height: 100}
	by := map[int64]minute{}
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

// scopeApps is a SQL condition limiting `col` (an application id column)
// to the applications visible to scope, using placeholder $n.
func scopeApps(scope hook.Scope, col string, n int) (string, []any) {
	switch {
	case scope.Admin:
		return "TRUE", nil
	case scope.AppID != "":
		return fmt.Sprintf("%s = $%d", col, n), []any{scope.AppID}
	case scope.UserID != "":
		return fmt.Sprintf("%s IN (SELECT app_id FROM application_members WHERE user_id = $%d)", col, n), []any{scope.UserID}
	}
	return "FALSE", nil
}

func (u *UI) deliveryMinutes(ctx context.Context, scope hook.Scope) ([]minute, error) {
	cond, args := scopeApps(scope, "h.app_id", 1)
	rows, err := u.pool.Query(ctx, `SELECT date_trunc('minute', h.created_at), count(*),
			count(*) FILTER (WHERE h.status_code BETWEEN 200 AND 299)
		FROM delivery_history h WHERE h.created_at > now() - interval '30 minutes' AND `+cond+`
		GROUP BY 1 ORDER BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("deliveries per minute: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (minute, error) {
		var m minute
		err := r.Scan(&m.At, &m.Total, &m.Succeeded)
		return m, err
	})
}

// failure is a recent failed or dead message, or an endpoint that was
// disabled, on the dashboard.
type failure struct {
	AppID, AppName, EndpointID, URL, MessageID, State, Error string
	Status                                                   *int
	At                                                       time.Time
}

func (u *UI) recentFailures(ctx context.Context, scope hook.Scope) ([]failure, error) {
	cond, args := scopeApps(scope, "m.app_id", 1)
	rows, err := u.pool.Query(ctx, `SELECT m.app_id, a.name, m.endpoint_id, e.url, m.id, m.state, m.last_error, m.last_status, m.updated_at
		FROM messages m JOIN endpoints e ON e.id = m.endpoint_id JOIN applications a ON a.id = m.app_id
		WHERE m.state IN ('failed', 'dead') AND `+cond+` ORDER BY m.updated_at DESC LIMIT 10`, args...)
	if err != nil {
		return nil, fmt.Errorf("recent failures: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (failure, error) {
		var f failure
		err := r.Scan(&f.AppID, &f.AppName, &f.EndpointID, &f.URL, &f.MessageID, &f.State, &f.Error, &f.Status, &f.At)
		return f, err
	})
}

func (u *UI) disabledEndpoints(ctx context.Context, scope hook.Scope) ([]failure, error) {
	cond, args := scopeApps(scope, "e.app_id", 1)
	rows, err := u.pool.Query(ctx, `SELECT e.app_id, a.name, e.id, e.url, e.disabled_reason, e.updated_at
		FROM endpoints e JOIN applications a ON a.id = e.app_id
		WHERE NOT e.enabled AND `+cond+` ORDER BY e.updated_at DESC LIMIT 10`, args...)
	if err != nil {
		return nil, fmt.Errorf("disabled endpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (failure, error) {
		var f failure
		err := r.Scan(&f.AppID, &f.AppName, &f.EndpointID, &f.URL, &f.Error, &f.At)
		return f, err
	})
}

type dashData struct {
	Chains   []chainStatus
	Chart    chart
	Failures []failure
	Disabled []failure
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
	mins, err := u.deliveryMinutes(ctx, scope)
	if err != nil {
		return d, err
	}
	d.Chart = buildChart(mins, time.Now())
	if d.Failures, err = u.recentFailures(ctx, scope); err != nil {
		return d, err
	}
	if d.Disabled, err = u.disabledEndpoints(ctx, scope); err != nil {
		return d, err
	}
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
