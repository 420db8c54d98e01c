package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/tenant"
)

// The devnet sends the demo endpoint ~12 Transfers/s. On the old default
// plan (free: 10/s, 10,000 a month) the backlog grew and after ~18 minutes
// every webhook was held; the demo's plan must cap neither.
func TestDemoAppIsOnAPlanWithoutRateLimitOrQuota(t *testing.T) {
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.PGURL(t)
	cfg.Redis.URL = testenv.RedisURL()
	_, prefix := testenv.Redis(t)
	cfg.Redis.Prefix = prefix
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	rt := &Runtime{Cfg: cfg, Log: zap.NewNop()}
	defer rt.Close()
	ctx := context.Background()
	pool, rdb, box, err := rt.storage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{rt: rt, log: zap.NewNop()}
	apps := tenant.New(pool).WithDefaultPlan(cfg.Admin.DefaultPlan)
	appID, epID, _, err := d.seed(ctx, apps, endpoint.New(pool, box, rdb, rt.Keys(), cfg.Chains), "http://127.0.0.1:9/webhook")
	if err != nil {
		t.Fatal(err)
	}
	app, err := apps.GetApplication(ctx, hook.Operator, appID)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := apps.GetPlan(ctx, app.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	if plan.MonthlyQuota != 0 || plan.RateLimit != 0 {
		t.Fatalf("demo app %s (endpoint %s) is on plan %+v: it caps the demo's ~12 webhooks/s", appID, epID, plan)
	}
}
