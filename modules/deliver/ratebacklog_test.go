package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/ops"
)

// testRateRule is the backlog rule with short times: checked every 200 ms,
// held for 1 s, a backlog of one second of sending (at least 10) starts it.
var testRateRule = rateRule{check: 200 * time.Millisecond, holdGap: time.Second, holdFor: time.Second,
	startAfter: time.Second, quiet: time.Second}

// startLogged runs a deliver module whose log goes to core.
func (e *env) startLogged(t *testing.T, core zapcore.Core, o ...Options) {
	t.Helper()
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Box: e.box, Version: "1.2.3", Log: zap.New(core), Registerer: prometheus.NewRegistry()}, options(o))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("module did not stop within 30s")
		}
	})
}

// slowPlan makes a plan of rate webhooks/s and an application on it.
func (e *env) slowPlan(t *testing.T, rate int) string {
	t.Helper()
	plan := "slow_" + ulid.Make().String()
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
		VALUES ($1, 'Slow', 1000000000, 100, $2)`, plan, rate); err != nil {
		t.Fatal(err)
	}
	return e.app(t, plan)
}

// opsBodies is what an operational receiver got, by type.
func opsBodies(t *testing.T, rc *receiver) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, r := range rc.got() {
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("operational body %s: %v", r.body, err)
		}
		out[p.Type] = append(out[p.Type], p.Data)
	}
	return out
}

// pollFor polls cond for up to d (generous: the machine is shared).
func pollFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRateLimitBacklogIsReportedOnceAndClearedOnceWhenItDrains: an
// endpoint on a plan of 5 webhooks/s gets 25 events/s for two seconds,
// with two deliver processes sending to it. The fleet logs one start line
// and sends one endpoint.rate_limited webhook; while it lasts, the episode
// (what the API and UI show) names the plan's limit and the backlog; when
// the load has stopped and the backlog drained, one clear line and one
// endpoint.rate_limit_cleared (reason drained) follow, and nothing more.
func TestRateLimitBacklogIsReportedOnceAndClearedOnceWhenItDrains(t *testing.T) {
	e := newEnv(t)
	core, logs := observer.New(zapcore.InfoLevel)
	opsRC := newReceiver(t, nil)
	customer := newReceiver(t, nil)
	operator := e.app(t, "unlimited")
	opsEP, _ := e.endpoint(t, operator, opsRC.URL, epOpt{})
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET ops_events = $2 WHERE id = $1`, opsEP,
		[]string{ops.EndpointRateLimited, ops.EndpointRateLimitCleared}); err != nil {
		t.Fatal(err)
	}
	app := e.slowPlan(t, 5)
	ep, _ := e.endpoint(t, app, customer.URL, epOpt{})
	e.startLogged(t, core, Options{rateRule: testRateRule})
	e.startLogged(t, core, Options{rateRule: testRateRule})

	var ids []string
	for range 50 {
		id, _ := e.message(t, app, ep, "")
		ids = append(ids, id)
		time.Sleep(40 * time.Millisecond)
	}
	pollFor(t, 60*time.Second, "an endpoint.rate_limited webhook", func() bool { return len(opsBodies(t, opsRC)[ops.EndpointRateLimited]) > 0 })
	started := opsBodies(t, opsRC)[ops.EndpointRateLimited][0]
	if started["endpoint_id"] != ep || started["app_id"] != app || started["rate_limit"] != float64(5) || started["backlog"].(float64) < 10 {
		t.Fatalf("endpoint.rate_limited data %v: want endpoint %s of %s, the plan's limit 5, a backlog of at least 10", started, ep, app)
	}
	if v, err := e.rdb.Do(context.Background(), e.rdb.B().Hget().Key(e.keys().RateLimited()).Field(ep).Build()).ToString(); err != nil {
		// Drained already on a fast machine: the clear below says so.
		t.Logf("episode not read while under way: %v", err)
	} else if st, err := hook.ParseRateLimited(v); err != nil || st.RateLimit != 5 || st.AppID != app || st.Backlog < 1 || st.Since.IsZero() {
		t.Fatalf("episode %q (%+v, %v): want the plan's limit, the app, a backlog and a start", v, st, err)
	}

	pollFor(t, 120*time.Second, "an endpoint.rate_limit_cleared webhook", func() bool { return len(opsBodies(t, opsRC)[ops.EndpointRateLimitCleared]) > 0 })
	left := 0
	for _, id := range ids {
		if r := e.msg(t, id); r.State != hook.StateSucceeded {
			left++
		}
	}
	if left >= 5 {
		t.Errorf("%d messages not yet delivered at the clear: drained means less than one second of sending (5)", left)
	}
	cleared := opsBodies(t, opsRC)[ops.EndpointRateLimitCleared][0]
	if cleared["endpoint_id"] != ep || cleared["reason"] != ops.ClearedDrained || cleared["since"] != started["since"] ||
		cleared["max_backlog"].(float64) < started["backlog"].(float64) {
		t.Fatalf("endpoint.rate_limit_cleared data %v: want endpoint %s drained, the episode of %v", cleared, ep, started)
	}
	for _, id := range ids {
		e.waitState(t, id, hook.StateSucceeded)
	}
	time.Sleep(10 * testRateRule.check) // later checks must add nothing

	got := opsBodies(t, opsRC)
	if len(got[ops.EndpointRateLimited]) != 1 || len(got[ops.EndpointRateLimitCleared]) != 1 {
		t.Fatalf("operational webhooks %v: want one of each", got)
	}
	start := logs.FilterMessage("endpoint is held back by its rate limit: its backlog grows faster than the limit lets it out; raise the endpoint's or its plan's rate_limit, or expect webhooks to arrive late").All()
	end := logs.FilterMessage("endpoint no longer held back by its rate limit").All()
	if len(start) != 1 || len(end) != 1 {
		t.Fatalf("%d start and %d clear log lines from two processes, want one each", len(start), len(end))
	}
	f := start[0].ContextMap()
	if f["endpoint"] != ep || f["app"] != app || f["rate_limit"] != int64(5) {
		t.Fatalf("start line fields %v", f)
	}
	if f := end[0].ContextMap(); f["reason"] != ops.ClearedDrained || f["max_backlog"].(int64) < 10 {
		t.Fatalf("clear line fields %v", f)
	}
	if n, _ := e.rdb.Do(context.Background(), e.rdb.B().Hlen().Key(e.keys().RateLimited()).Build()).AsInt64(); n != 0 {
		t.Fatalf("%d episodes left after the clear", n)
	}
}

// TestRateLimitEpisodeEndsWhenTheEndpointIsDisabled: an episode whose
// endpoint stops sending (disabled) with its backlog still waiting ends as
// not_held: the limiter is no longer what holds it back.
func TestRateLimitEpisodeEndsWhenTheEndpointIsDisabled(t *testing.T) {
	e := newEnv(t)
	core, logs := observer.New(zapcore.InfoLevel)
	app := e.slowPlan(t, 2)
	ep, _ := e.endpoint(t, app, newReceiver(t, nil).URL, epOpt{})
	for range 60 {
		e.message(t, app, ep, "")
	}
	e.startLogged(t, core, Options{rateRule: testRateRule})
	episode := func() bool {
		n, _ := e.rdb.Do(context.Background(), e.rdb.B().Hexists().Key(e.keys().RateLimited()).Field(ep).Build()).AsBool()
		return n
	}
	pollFor(t, 60*time.Second, "an episode", episode)
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET enabled = false WHERE id = $1`, ep); err != nil {
		t.Fatal(err)
	}
	e.rdb.Do(context.Background(), e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(ep).Build())
	pollFor(t, 60*time.Second, "the episode to end", func() bool { return !episode() })
	end := logs.FilterMessage("endpoint no longer held back by its rate limit").All()
	if len(end) != 1 || end[0].ContextMap()["reason"] != ops.ClearedNotHeld {
		t.Fatalf("clear lines %v, want one not_held", fmt.Sprint(end))
	}
}
