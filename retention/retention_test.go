package retention_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/retention"
)

const day = 24 * time.Hour

func names(t *testing.T, pool *pgxpool.Pool, parent string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass ORDER BY c.relname`, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func setup(t testing.TB) *pgxpool.Pool {
	pool := testenv.PG(t)
	for _, q := range []string{
		`INSERT INTO applications (id, name, plan_id) VALUES ('app_r', 'r', 'unlimited')`,
		`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_r', 'app_r', 'http://x.test/', '\x00')`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// insert writes a message made at 'at' (its id's time) and one attempt.
func insert(t *testing.T, pool *pgxpool.Pool, at time.Time, n int) string {
	t.Helper()
	id := hook.MessageID("ep_r", fmt.Sprintf("1:0xb:%d", n), hook.TypeLog, at, at)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `WITH m AS (
			INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, 'app_r', 'ep_r', $2, 'log', $2, 1, $3, '{}') RETURNING *
		)
		INSERT INTO message_states (id, app_id, endpoint_id, state, type, block_number, created_at)
		SELECT id, app_id, endpoint_id, 'succeeded', type, block_number, created_at FROM m`, id, fmt.Sprintf("1:0xb:%d", n), n); err != nil {
		t.Fatalf("insert message at %s: %v", at, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, 'ep_r', 'app_r', 1)`, id); err != nil {
		t.Fatalf("insert attempt at %s: %v", at, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO audit_log (at, actor, actor_type, action) VALUES ($1, 'operator', 'operator', 'x')`, at); err != nil {
		t.Fatalf("insert audit at %s: %v", at, err)
	}
	return id
}

func count(t testing.TB, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Forty days on, the module's round drops exactly the partitions entirely
// past retention (messages 30 days, attempts 10, audit 20) and creates the
// days ahead; every row younger than its retention is still there.
func TestRoundDropsWholePartitionsPastRetentionAndKeepsTheRest(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	start := time.Now()
	later := start.Add(40 * day)
	// Partitions from today to 40 days on, as daily rounds would have made.
	if _, err := retention.Ensure(ctx, pool, later, retention.Layout{Width: day, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	ids := map[int]string{}
	for d := 0; d <= 40; d++ {
		// Made at noon of each day: midday, so horizons fall clearly between.
		y, mo, dd := start.Add(time.Duration(d) * day).UTC().Date()
		ids[d] = insert(t, pool, time.Date(y, mo, dd, 12, 0, 0, 0, time.UTC), d)
	}
	cfg := config.DefaultRetention()
	cfg.Attempts, cfg.Audit = 10*day, 20*day
	m := retention.New(module.Deps{Config: config.Config{Retention: cfg}, Pool: pool, Log: zaptest.NewLogger(t)}, retention.Options{})
	m.SetClock(func() time.Time { return later })
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	horizon := func(keep time.Duration) time.Time { return later.Add(-keep) }
	for d, id := range ids {
		at, _ := hook.MessageTime(id)
		// A row goes once its whole day is past the horizon.
		gone := func(keep time.Duration) bool { return !at.Truncate(day).Add(day).After(horizon(keep)) }
		if got, want := count(t, pool, `SELECT count(*) FROM messages WHERE id = $1`, id), b2i(!gone(30*day)); got != want {
			t.Errorf("day %d: %d messages, want %d", d, got, want)
		}
		if got, want := count(t, pool, `SELECT count(*) FROM delivery_history WHERE message_id = $1`, id), b2i(!gone(10*day)); got != want {
			t.Errorf("day %d: %d attempts, want %d", d, got, want)
		}
	}
	if got := count(t, pool, `SELECT count(*) FROM audit_log`); got < 20 || got > 22 {
		t.Errorf("%d audit rows kept, want the last 20-22 days", got)
	}
	for _, p := range names(t, pool, "messages") {
		if p == "messages_legacy" {
			t.Errorf("legacy partition of the migration still there 40 days on: %v", names(t, pool, "messages"))
		}
	}
	// Running the round again changes nothing.
	before := len(names(t, pool, "messages")) + len(names(t, pool, "delivery_history")) + len(names(t, pool, "audit_log"))
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if after := len(names(t, pool, "messages")) + len(names(t, pool, "delivery_history")) + len(names(t, pool, "audit_log")); after != before {
		t.Errorf("second round: %d partitions, first %d", after, before)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A plan's longer retention keeps messages partitions for that long.
func TestPlanRetentionOverridesTheConfiguredOne(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints, retention_days) VALUES ('long', 'Long', 0, 0, 90)`); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultRetention()
	keep, err := retention.MessagesRetention(ctx, pool, cfg)
	if err != nil || keep != 90*day {
		t.Fatalf("messages retention %s (%v), want 90 days", keep, err)
	}
	h, err := retention.HorizonsAt(ctx, pool, cfg, time.Now())
	if err != nil || time.Since(h.Messages) < 89*day || time.Since(h.Attempts) < 89*day {
		t.Errorf("horizons %+v (%v): attempts follow the messages retention when retention.attempts is 0", h, err)
	}
}

// Many processes creating partitions at once: each day is made once, none
// fails, and the ranges are contiguous.
func TestEnsureUnderConcurrentProcessesCreatesEachDayOnce(t *testing.T) {
	pool := setup(t)
	url := pool.Config().ConnString()
	ctx := context.Background()
	later := time.Now().Add(10 * day)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := pgxpool.New(ctx, url) // a process of its own
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			_, err = retention.Ensure(ctx, p, later, retention.Layout{Width: day, Ahead: 3})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms, dh := names(t, pool, "messages"), names(t, pool, "delivery_history")
	if len(ms) != len(dh) || len(ms) < 12 {
		t.Errorf("messages partitions %v, delivery_history %v", ms, dh)
	}
	// Every day from now to 13 days on takes a message and its attempt.
	for d := range 14 {
		insert(t, pool, time.Now().Add(time.Duration(d)*day), d)
	}
}
