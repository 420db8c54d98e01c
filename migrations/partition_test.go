package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/migrations"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/retention"
)

// checksums is a digest of every row of each traffic table, so the
// upgrade is checked to keep every row and every value.
func checksums(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tbl := range []string{"messages", "delivery_history", "audit_log"} {
		var n int64
		var sum string
		q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t`, tbl)
		if err := pool.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		out[tbl] = fmt.Sprintf("%d rows %s", n, sum)
	}
	return out
}

// migratedTo is an empty database of its own migrated up to version, to
// fill with the schema of that version before the migration under test.
func migratedTo(t *testing.T, version int64) (*pgxpool.Pool, *migrations.Migrator) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.EmptyPGURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m, err := migrations.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return pool, m
}

func exec(t *testing.T, pool *pgxpool.Pool, q string, args ...any) pgconn.CommandTag {
	t.Helper()
	tag, err := pool.Exec(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return tag
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// A database filled by the schema before 00063 is migrated without losing
// a row, and then works: old messages are read with their attempts, new ones
// go to new partitions, and dedup holds both for old rows and new ones.
func TestUpgradeToPartitionedTablesKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	pool, m := migratedTo(t, 62)

	// Today's schema, filled: messages made over the last 40 days (random
	// ULID ids, as before), two attempts each, audit rows.
	exec(t, pool, `INSERT INTO applications (id, name, plan_id) VALUES ('app_a', 'a', 'unlimited')`)
	exec(t, pool, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_a', 'app_a', 'http://x.test/', '\x00')`)
	now := time.Now()
	var oldID, pastID string
	for i := range 200 {
		at := now.Add(-time.Duration(i) * 5 * time.Hour)
		id := "msg_" + ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
		switch i {
		case 50: // 10 days old
			oldID = id
		case 150: // 31 days old: past the default retention of 30 days
			pastID = id
		}
		exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number,
			block_hash, tx_hash, payload, state, attempts, created_at, updated_at)
			VALUES ($1, 'app_a', 'ep_a', $2, 'log', $2, 1, $3, '0xb', '0xt', '{"n":1}', 'succeeded', 2, $4, $4)`,
			id, fmt.Sprintf("1:0xb:%d", i), i, at)
		exec(t, pool, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, created_at)
			VALUES ($1, 'ep_a', 'app_a', 1, 500, $2), ($1, 'ep_a', 'app_a', 2, 200, $2)`, id, at)
		exec(t, pool, `INSERT INTO audit_log (at, actor, actor_type, app_id, action) VALUES ($1, 'operator', 'operator', 'app_a', 'endpoint.update')`, at)
	}
	before := checksums(t, pool)

	// Up to the partitioning migrations only: later ones add columns,
	// which would change every row's checksum. The last step below goes
	// up to the newest.
	if _, err := m.UpTo(ctx, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: 24 * time.Hour, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	after := checksums(t, pool)
	for tbl, want := range before {
		if after[tbl] != want {
			t.Errorf("%s: before %s, after %s", tbl, want, after[tbl])
		}
	}
	for _, tbl := range []string{"messages", "delivery_history", "audit_log"} {
		var kind string
		if err := pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE relname = $1`, tbl).Scan(&kind); err != nil || kind != "p" {
			t.Errorf("%s: relkind %q (%v), want p (partitioned)", tbl, kind, err)
		}
	}

	// The sequences moved to the new tables (the legacy partitions may be
	// dropped by retention).
	exec(t, pool, `INSERT INTO audit_log (actor, actor_type, action) VALUES ('operator', 'operator', 'x')`)

	// A new message two days ahead lands in a new daily partition, and so
	// do its attempts.
	ahead := now.Add(48 * time.Hour)
	newID := hook.MessageID("ep_a", "1:0xc:1", hook.TypeLog, ahead, ahead)
	insert := func(id, eventID string) int64 {
		return exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload, state)
			VALUES ($1, 'app_a', 'ep_a', $2, 'log', $2, 1, 1, '{}', 'pending') ON CONFLICT DO NOTHING`, id, eventID).RowsAffected()
	}
	if n := insert(newID, "1:0xc:1"); n != 1 {
		t.Fatalf("insert new message: %d rows", n)
	}
	exec(t, pool, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, 'ep_a', 'app_a', 1)`, newID)
	var part string
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM messages WHERE id = $1`, newID).Scan(&part); err != nil ||
		part != "messages_p"+ahead.UTC().Format("20060102") {
		t.Errorf("new message in partition %q (%v)", part, err)
	}
	// The same event again (re-processing): the same id, skipped.
	if n := insert(hook.MessageID("ep_a", "1:0xc:1", hook.TypeLog, ahead, ahead.Add(time.Minute)), "1:0xc:1"); n != 0 {
		t.Errorf("re-insert of the same event inserted %d rows", n)
	}
	// An old event re-inserted under a new-style id is still caught by the
	// legacy partition's own unique constraint.
	if n := insert(hook.MessageID("ep_a", "1:0xb:3", hook.TypeLog, now, now), "1:0xb:3"); n != 0 {
		t.Errorf("re-insert of a pre-upgrade event inserted %d rows", n)
	}

	// Rolling back to 00062 gives plain tables with every row (those of
	// the day partitions too), and up again works.
	mid := checksums(t, pool)
	for range 2 {
		if _, err := m.Down(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if down := checksums(t, pool); fmt.Sprint(down) != fmt.Sprint(mid) {
		t.Errorf("rolled back to 00062: %v, before %v", down, mid)
	}
	for _, tbl := range []string{"messages", "delivery_history", "audit_log"} {
		var kind string
		if err := pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE relname = $1`, tbl).Scan(&kind); err != nil || kind != "r" {
			t.Errorf("%s after rollback: relkind %q (%v), want r (plain)", tbl, kind, err)
		}
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: 24 * time.Hour, Ahead: 3}); err != nil {
		t.Fatal(err)
	}

	// The old message reads with its attempts through the service (on the
	// newest schema: it reads message_states, 00087).
	svc := message.New(pool, nil, hook.Keys{})
	got, atts, err := svc.Get(ctx, hook.Operator, oldID)
	if err != nil || got.ID != oldID || len(atts) != 2 {
		t.Fatalf("get old message %s: %+v, %d attempts, %v", oldID, got, len(atts), err)
	}
	// One older than retention.messages (still stored: its day goes with
	// the next retention round) answers past retention, and is not replayed.
	if _, _, err := svc.Get(ctx, hook.Operator, pastID); !errors.Is(err, message.ErrPastRetention) {
		t.Errorf("get message %s of 31 days ago: %v, want ErrPastRetention", pastID, err)
	}
	if _, err := svc.Replay(ctx, hook.Operator, pastID); !errors.Is(err, message.ErrPastRetention) {
		t.Errorf("replay message %s of 31 days ago: %v, want ErrPastRetention", pastID, err)
	}
	// Deleting the endpoint as ethhook does (msgstate.Forget for the waiting
	// states, then the retention role's purge for the rest, 00090) empties
	// every partition, the legacy one included.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = 'ep_a'`); err != nil {
			return err
		}
		return msgstate.Forget(ctx, tx, "app_a", []string{"ep_a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Purge(t, pool, time.Now())
	for _, tbl := range []string{"messages", "message_states", "delivery_history"} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tbl}.Sanitize()).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after deleting the endpoint: %d rows (%v)", tbl, n, err)
		}
	}
}
