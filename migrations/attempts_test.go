package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/retention"
)

// 00089 drops delivery_history's foreign keys to messages on every
// partition (the legacy one, the default one, the days); its Down puts one
// back on each partition, including those created while there was none,
// after deleting the attempts whose message is gone.
func TestAttemptsLoseTheirMessageKeyAndGetItBack(t *testing.T) {
	ctx := context.Background()
	pool, m := migratedTo(t, 88)
	now := time.Now()
	keys := func() (n, parts int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
			 WHERE i.inhparent = 'delivery_history'::regclass AND c.contype = 'f'),
			(SELECT count(*) FROM pg_inherits WHERE inhparent = 'delivery_history'::regclass)`).Scan(&n, &parts); err != nil {
			t.Fatal(err)
		}
		return n, parts
	}
	if n, parts := keys(); n == 0 || n != parts {
		t.Fatalf("at 00088: %d foreign keys on %d partitions, want one each", n, parts)
	}
	if _, err := m.UpTo(ctx, 89); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: time.Hour, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	if n, parts := keys(); n != 0 || parts < 5 {
		t.Fatalf("at 00089: %d foreign keys on %d partitions, want none", n, parts)
	}
	exec(t, pool, `INSERT INTO applications (id, name) VALUES ('app_a', 'a')`)
	exec(t, pool, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_a', 'app_a', 'http://x.test/', '\x00')`)
	dayID := hook.MessageID("ep_a", "1:0xa:1", hook.TypeLog, now, now)
	for _, id := range []string{dayID, "msg_handmade"} {
		exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, 'app_a', 'ep_a', $1, 'log', $1, 1, 1, '{}')`, id)
	}
	// Attempts of both, and of two messages that do not exist: accepted.
	for _, id := range []string{dayID, "msg_handmade", hook.MessageID("ep_a", "1:0xa:2", hook.TypeLog, now, now), "msg_gone"} {
		exec(t, pool, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, 'ep_a', 'app_a', 1)`, id)
	}

	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if n, parts := keys(); n != parts {
		t.Errorf("rolled back to 00088: %d foreign keys on %d partitions, want one each", n, parts)
	}
	rows, err := pool.Query(ctx, `SELECT message_id FROM delivery_history ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0] != dayID || left[1] != "msg_handmade" {
		t.Errorf("attempts after the rollback: %v, want those of %s and msg_handmade", left, dayID)
	}
	_, err = pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ('msg_gone', 'ep_a', 'app_a', 1)`)
	if sqlState(err) != "23503" {
		t.Errorf("attempt of a missing message after the rollback: %v, want 23503", err)
	}
}
