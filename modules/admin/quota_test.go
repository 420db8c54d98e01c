package admin

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/tenant"
)

func TestReachingTheQuotaIsLoggedOnceNotPerMessage(t *testing.T) {
	h := newHarness(t)
	core, logs := observer.New(zapcore.InfoLevel)
	h.m.log = zap.New(core)
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "tiny", "name": "Tiny", "monthly_quota": 2, "max_endpoints": 1})
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "q", PlanID: "tiny"}).json(t, &app)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		// Deliveries go on past the quota between passes (messages admitted before it).
		if _, err := h.store.Pool().Exec(ctx, `INSERT INTO usage (app_id, month, deliveries)
			VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, $2)
			ON CONFLICT (app_id, month) DO UPDATE SET deliveries = EXCLUDED.deliveries`, app.ID, 2+i); err != nil {
			t.Fatal(err)
		}
		h.m.releaseOnce(ctx)
	}
	lines := logs.FilterMessageSnippet("reached its monthly quota").All()
	if len(lines) != 1 {
		t.Fatalf("%d quota lines, want 1: %+v", len(lines), lines)
	}
	f := lines[0].ContextMap()
	if f["app"] != app.ID || f["plan"] != "tiny" || f["monthly_quota"] != int64(2) || lines[0].Level != zapcore.WarnLevel {
		t.Fatalf("quota line %+v", f)
	}
}

func TestAdminRefusesToStartWithADefaultPlanThatDoesNotExist(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.DefaultPlan = "unlimted" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.m.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `admin.default_plan (ETHHOOK_ADMIN_DEFAULT_PLAN)="unlimted": no such plan`) {
		t.Fatalf("Run: %v", err)
	}
}

func TestARateLimitBacklogIsLoggedWhenItStartsAndWhenItEnds(t *testing.T) {
	h := newHarness(t)
	core, logs := observer.New(zapcore.InfoLevel)
	h.m.log = zap.New(core)
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "slow", "name": "Slow", "monthly_quota": 0, "max_endpoints": 0, "rate_limit": 10})
	var app, free appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "slow", PlanID: "slow"}).json(t, &app)
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "fast"}).json(t, &free) // default plan: no rate limit
	ctx := context.Background()
	pool := h.store.Pool()
	add := func(appID, ep string, n int, dueAgo time.Duration) {
		for i := 0; i < n; i++ {
			id := tenant.NewID("msg")
			if _, err := pool.Exec(ctx, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload, state, next_attempt_at)
				VALUES ($1, $2, $3, $1, 'log', $1, 31337, $4, '{}', 'pending', now() - make_interval(secs => $5))`, id, appID, ep, i, dueAgo.Seconds()); err != nil {
				t.Fatal(err)
			}
		}
	}
	endpoint := func(appID string) string {
		ep := tenant.NewID("ep")
		if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ($1, $2, 'https://example.com/h', '\x00')`, ep, appID); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	slow, fast := endpoint(app.ID), endpoint(free.ID)
	add(app.ID, slow, 5, time.Second) // due just now: not behind yet
	add(free.ID, fast, 5, time.Hour)  // no rate limit: a slow receiver, not this
	h.m.releaseOnce(ctx)
	if n := len(logs.FilterMessageSnippet("behind its rate limit").All()); n != 0 {
		t.Fatalf("%d backlog lines before any message waited a minute", n)
	}
	add(app.ID, slow, 3, 2*time.Minute)
	for i := 0; i < 3; i++ {
		h.m.releaseOnce(ctx)
	}
	lines := logs.FilterMessageSnippet("behind its rate limit").All()
	if len(lines) != 1 || lines[0].ContextMap()["endpoint"] != slow || lines[0].ContextMap()["waiting"] != int64(3) || lines[0].ContextMap()["rate_limit"] != int64(10) {
		t.Fatalf("backlog lines %+v, want one for %s", lines, slow)
	}
	if _, err := pool.Exec(ctx, `UPDATE messages SET state = 'succeeded' WHERE endpoint_id = $1`, slow); err != nil {
		t.Fatal(err)
	}
	h.m.releaseOnce(ctx)
	h.m.releaseOnce(ctx)
	if n := len(logs.FilterMessageSnippet("caught up with its rate limit").All()); n != 1 {
		t.Fatalf("%d caught-up lines, want 1", n)
	}
}
