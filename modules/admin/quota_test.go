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
