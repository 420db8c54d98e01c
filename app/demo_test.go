package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/migrations"
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

// An existing database's demo app was created on 'free'; migration 00062
// moves it (found by its endpoint, as seed finds it) to 'unlimited', and
// leaves other applications on 'free' alone.
func TestMigrationMovesAnExistingDemoAppOffTheFreePlan(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.EmptyPGURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, err := migrations.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The database as the release before 00062 left it, built up to 00061
	// (rolling back from the newest would also undo later migrations).
	if res, err := m.UpTo(ctx, 61); err != nil || len(res) == 0 || res[len(res)-1].Version != 61 {
		t.Fatalf("up to 61: %+v %v", res, err)
	}
	for _, q := range []string{
		`INSERT INTO applications (id, name, plan_id) VALUES ('app_demo', 'demo', 'free'), ('app_shop', 'shop', 'free'), ('app_fake', 'demo', 'free')`,
		`INSERT INTO endpoints (id, app_id, url, secret_enc, description) VALUES ('ep_demo', 'app_demo', 'http://127.0.0.1:9000/webhook', '\x00', '` + demoDescription + `')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"app_demo": "unlimited", "app_shop": "free", "app_fake": "free"} {
		var plan string
		if err := pool.QueryRow(ctx, `SELECT plan_id FROM applications WHERE id = $1`, id).Scan(&plan); err != nil || plan != want {
			t.Errorf("%s on plan %q (%v), want %q", id, plan, err, want)
		}
	}
}

func TestTheDemoLogsAURLABrowserOpens(t *testing.T) {
	for listen, want := range map[string]string{
		":8080":          "http://localhost:8080",
		"0.0.0.0:8080":   "http://localhost:8080",
		"[::]:8080":      "http://localhost:8080",
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		"example.com:80": "http://example.com:80",
	} {
		if got := browseURL(listen); got != want {
			t.Errorf("browseURL(%q) = %q, want %q", listen, got, want)
		}
	}
}
