package tenant

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// The demo sends ~12 webhooks/s; at that rate 24 hours are 1,036,800
// deliveries, a hundred times the old free quota. An application on the
// default plan must pass every quota check all day.
func TestDefaultPlanAppNeverHoldsThroughADayOfDemoTraffic(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	app, err := s.CreateApplication(ctx, hook.Operator, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.GetPlan(ctx, app.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "unlimited" || p.MonthlyQuota != 0 || p.RateLimit != 0 || p.MaxEndpoints != 0 {
		t.Fatalf("new application's plan %+v, want unlimited with no quota, rate limit or endpoint cap", p)
	}
	seedMessages(t, s, app.ID, hook.StatePending, 2600) // the backlog the demo once built
	const perHour = 12 * 3600
	for hour := 1; hour <= 24; hour++ {
		setUsage(t, s, app.ID, time.Now(), int64(hour*perHour))
		s.quota.reset() // read Postgres every hour, not the cache
		if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || over {
			t.Fatalf("hour %d (%d deliveries): exceeded=%v err=%v", hour, hour*perHour, over, err)
		}
	}
	st, err := s.Usage(ctx, hook.Operator, app.ID)
	if err != nil || st.Exceeded || st.Deliveries != 24*perHour {
		t.Fatalf("usage after a day: %+v %v", st, err)
	}
	if reached, err := s.NoteQuotaReached(ctx); err != nil || len(reached) != 0 {
		t.Fatalf("unlimited application noted at quota: %+v %v", reached, err)
	}
}

func TestDefaultPlanIsTheConfiguredOneAndATypoIsNamed(t *testing.T) {
	s := newStore(t).WithDefaultPlan("free")
	ctx := context.Background()
	if err := s.CheckDefaultPlan(ctx); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "A", "")
	if err != nil || app.PlanID != "free" {
		t.Fatalf("app %+v %v, want plan free", app, err)
	}
	// A member may create applications on the configured default only.
	user := insertUser(t, s, "m@example.com")
	if _, err := s.CreateApplication(ctx, hook.Scope{UserID: user}, "B", "free"); err != nil {
		t.Fatalf("member naming the default plan: %v", err)
	}
	err = s.WithDefaultPlan("unlimted").CheckDefaultPlan(ctx)
	if err == nil {
		t.Fatal("a default plan that does not exist passed the check")
	}
	for _, want := range []string{"ETHHOOK_ADMIN_DEFAULT_PLAN", `"unlimted"`, "free, unlimited"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %s", err, want)
		}
	}
}

// Usage once went to 12,848 of a 10,000 quota: the check counted deliveries
// only, so every message of a backlog admitted before the quota was
// reached was delivered after it. Messages on their way count now.
func TestQuotaCountsMessagesOnTheirWaySoABacklogCannotRunPastIt(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CreatePlan(ctx, hook.Operator, Plan{ID: "small", Name: "Small", MonthlyQuota: 10000}); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "A", "small")
	if err != nil {
		t.Fatal(err)
	}
	setUsage(t, s, app.ID, time.Now(), 7400)
	seedMessages(t, s, app.ID, hook.StatePending, 2000)
	seedMessages(t, s, app.ID, hook.StateFailed, 599) // due for a retry
	seedMessages(t, s, app.ID, hook.StateDead, 50)    // never delivered: not counted
	if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || over {
		t.Fatalf("9,999 of 10,000 admitted: exceeded=%v err=%v", over, err)
	}
	// One more admitted message uses the last of the quota. The answer
	// above is not cached this close to the quota, so the next check sees it.
	seedMessages(t, s, app.ID, hook.StateDelivering, 1)
	if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || !over {
		t.Fatalf("10,000 of 10,000 admitted: exceeded=%v err=%v", over, err)
	}
	st, err := s.Usage(ctx, hook.Operator, app.ID)
	if err != nil || !st.Exceeded || st.InFlight != 2600 || st.Deliveries != 7400 {
		t.Fatalf("usage %+v %v", st, err)
	}
}

func TestQuotaReachedIsNotedOnceAMonth(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CreatePlan(ctx, hook.Operator, Plan{ID: "tiny", Name: "Tiny", MonthlyQuota: 3}); err != nil {
		t.Fatal(err)
	}
	used, _ := s.CreateApplication(ctx, hook.Operator, "used", "tiny")
	held, _ := s.CreateApplication(ctx, hook.Operator, "held", "tiny")
	under, _ := s.CreateApplication(ctx, hook.Operator, "under", "tiny")
	setUsage(t, s, used.ID, time.Now(), 3)
	seedMessages(t, s, held.ID, hook.StateQuotaExceeded, 2) // no usage row yet this month
	setUsage(t, s, under.ID, time.Now(), 2)
	setUsage(t, s, under.ID, monthStart(time.Now()).AddDate(0, -1, 0), 3) // last month does not count (from the month's start: Mar 31 less a month is Mar 3)

	reached, err := s.NoteQuotaReached(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]QuotaReached{}
	for _, r := range reached {
		got[r.AppID] = r
	}
	if len(got) != 2 || got[used.ID].Deliveries != 3 || got[used.ID].Quota != 3 || got[held.ID].AppName != "held" {
		t.Fatalf("noted %+v, want used and held", reached)
	}
	for i := 0; i < 3; i++ {
		setUsage(t, s, used.ID, time.Now(), int64(4+i)) // more messages past the quota
		if again, err := s.NoteQuotaReached(ctx); err != nil || len(again) != 0 {
			t.Fatalf("noted again: %+v %v", again, err)
		}
	}
}

// The count of messages on their way reads the application's backlog, so
// process's workers missing the cache at one moment share one count rather
// than each making their own (the 2,000 events/s soak: two Postgres
// backends counting a 300,000-message backlog at once, 300 ms each).
func TestQuotaChecksMissingTheCacheAtOnceShareOneCount(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.PGURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var counts atomic.Int64
	cfg.ConnConfig.Tracer = countTracer{sql: "count(*) FROM message_states", n: &counts}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := New(pool)
	if _, err := s.CreatePlan(ctx, hook.Operator, Plan{ID: "big", Name: "Big", MonthlyQuota: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "A", "big")
	if err != nil {
		t.Fatal(err)
	}
	ep := seedMessages(t, s, app.ID, hook.StatePending, 1)
	// A backlog big enough that the count takes a while.
	if _, err := pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		SELECT 'msg_' || lpad(i::text, 26, '0'), $1, $2, 'evt_' || i, 'log', 'evt_' || i, 31337, i, '{}' FROM generate_series(1, 50000) i RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, type, block_number, log_index)
		SELECT id, app_id, endpoint_id, 'pending', created_at, type, block_number, log_index FROM m`, app.ID, ep); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		s.quota.reset()
		counts.Store(0)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || over {
					t.Errorf("exceeded=%v err=%v", over, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := counts.Load(); n != 1 {
			t.Fatalf("round %d: 8 checks at once made %d counts, want 1", round, n)
		}
	}
}

// countTracer counts the queries whose text contains sql.
type countTracer struct {
	sql string
	n   *atomic.Int64
}

func (c countTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.sql) {
		c.n.Add(1)
	}
	return ctx
}

func (countTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
