package message

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/retention"
)

// A message whose day was dropped answers past retention (not a bare not
// found), as does one older than its plan's shorter retention; an unknown
// id of a retained day is not found.
func TestGetAndReplayPastRetentionSayRetention(t *testing.T) {
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	svc := New(pool, rdb, hook.Keys{Prefix: prefix}).WithRetention(30 * 24 * time.Hour)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO plans (id, name, monthly_quota, max_endpoints, retention_days) VALUES ('short', 'Short', 0, 0, 2)`,
		`INSERT INTO applications (id, name, plan_id) VALUES ('app_l', 'long', 'unlimited'), ('app_s', 'short', 'short')`,
		`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_l', 'app_l', 'https://l.example', '\x00'), ('ep_s', 'app_s', 'https://s.example', '\x00')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	insert := func(ep, app string, at time.Time) string {
		ev := "1:0xa:" + at.Format(time.RFC3339Nano)
		id := hook.MessageID(ep, ev, hook.TypeLog, at, at)
		if _, err := pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, $2, $3, $4, 'log', $4, 1, 1, '{}') RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, 'dead', 0, created_at, type, block_number, log_index, fifo_key FROM m`, id, app, ep, ev); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// The short plan keeps 2 days: its message of 3 days ago is hidden
	// (its partition stays for the other plans), the other app's is not.
	threeDays := now.Add(-3 * 24 * time.Hour)
	short, long := insert("ep_s", "app_s", threeDays), insert("ep_l", "app_l", threeDays)
	if _, _, err := svc.Get(ctx, hook.Operator, short); !errors.Is(err, ErrPastRetention) {
		t.Errorf("get of a message past its plan's 2 days: %v, want ErrPastRetention", err)
	}
	if _, _, err := svc.Get(ctx, hook.Operator, long); err != nil {
		t.Errorf("get of a message within retention.messages: %v", err)
	}
	// Nor is it listed or replayed by range; the other application's is.
	for app, want := range map[string]int{"app_s": 0, "app_l": 1} {
		page, err := svc.List(ctx, hook.Operator, Filter{AppID: app})
		if err != nil || len(page.Messages) != want {
			t.Errorf("list of %s: %d messages (%v), want %d", app, len(page.Messages), err, want)
		}
	}
	if n, err := svc.ReplayRange(ctx, hook.Operator, Range{EndpointID: "ep_s", Since: threeDays.Add(-time.Hour)}); err != nil || n != 0 {
		t.Errorf("replay range of the short plan's endpoint: %d (%v), want 0", n, err)
	}
	if n, err := svc.ReplayRange(ctx, hook.Operator, Range{EndpointID: "ep_l", Since: threeDays.Add(-time.Hour)}); err != nil || n != 1 {
		t.Errorf("replay range of the long plan's endpoint: %d (%v), want 1", n, err)
	}

	// Made today; then 40 days pass and retention drops today's partition.
	gone := insert("ep_l", "app_l", now)
	later := now.Add(40 * 24 * time.Hour)
	if _, err := retention.Ensure(ctx, pool, later, retention.Layout{Width: 24 * time.Hour, Ahead: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.Drop(ctx, pool, retention.Horizons{Messages: later.Add(-30 * 24 * time.Hour), Attempts: later, Audit: time.Time{}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE id = $1`, gone).Scan(&n); err != nil || n != 0 {
		t.Fatalf("message %s still stored after its day was dropped (%d, %v)", gone, n, err)
	}
	if _, _, err := svc.Get(ctx, hook.Operator, gone); !errors.Is(err, ErrPastRetention) {
		t.Errorf("get of a dropped message: %v, want ErrPastRetention", err)
	}
	if _, err := svc.Replay(ctx, hook.Operator, gone); !errors.Is(err, ErrPastRetention) {
		t.Errorf("replay of a dropped message: %v, want ErrPastRetention", err)
	}
	// An id of a retained day that never existed: not found.
	if _, _, err := svc.Get(ctx, hook.Operator, hook.MessageID("ep_l", "nope", hook.TypeLog, later, later)); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("get of an unknown id: %v, want ErrNotFound", err)
	}
}
