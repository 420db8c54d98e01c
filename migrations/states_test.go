package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/retention"
)

// stateColumns is every column of a message, the state ones included, as
// one projection that reads the same before 00087 (one table) and after it
// (messages joined with message_states, as `from`).
const stateColumns = `m.id, m.app_id, m.endpoint_id, m.event_id, m.type, m.webhook_id, m.chain_id, m.block_number,
	m.block_hash, m.tx_hash, m.payload::text, m.log_index, m.fifo_key, m.created_at,
	s.state, s.attempts, s.retry_base, s.next_attempt_at, s.last_status, s.last_error, s.lease_owner, s.lease_until, s.updated_at`

func messageDigest(t *testing.T, pool *pgxpool.Pool, from string) string {
	t.Helper()
	var n int64
	var sum string
	q := `SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM (SELECT ` + stateColumns + ` FROM ` + from + `) r`
	if err := pool.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
		t.Fatalf("digest of messages: %v", err)
	}
	return fmt.Sprintf("%d rows %s", n, sum)
}

// The state of messages moves to message_states (00087) on a database
// filled by the schema before it, in every kind of partition (the legacy
// one of 00063, days, the default), without losing a row or a value; the
// partitions are paired; the messages are then claimed and finished through
// msgstate; rolling back gives the same rows.
func TestUpgradeToMessageStatesKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	pool, m := migratedTo(t, 62)
	exec(t, pool, `INSERT INTO applications (id, name, plan_id) VALUES ('app_a', 'a', 'unlimited'), ('app_b', 'b', 'unlimited')`)
	exec(t, pool, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_a', 'app_a', 'http://x.test/', '\x00'),
		('ep_b', 'app_b', 'http://y.test/', '\x00')`)
	// Rows of the legacy partition: plain ids, from before 00063.
	exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload, state, attempts, last_status, last_error)
		SELECT 'msg_0000000000old' || lpad(i::text, 3, '0'), 'app_a', 'ep_a', '1:0xa:' || i, 'log', '1:0xa:' || i, 1, i, '{"old":1}',
		       (ARRAY['succeeded', 'dead', 'failed', 'pending'])[1 + i % 4], i % 5, 500, 'HTTP 500'
		FROM generate_series(1, 40) i`)
	if _, err := m.UpTo(ctx, 86); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: time.Hour, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	// Rows of today's partitions, of every state, with leases, retry
	// schedules and FIFO groups; one in the default partition.
	states := []string{hook.StatePending, hook.StateDelivering, hook.StateFailed, hook.StateSucceeded, hook.StateDead, hook.StateQuotaExceeded}
	var pending []string
	for i := range 60 {
		ep, app := "ep_a", "app_a"
		if i%3 == 0 {
			ep, app = "ep_b", "app_b"
		}
		at := now.Add(-time.Duration(i) * time.Minute)
		id := hook.MessageID(ep, fmt.Sprintf("1:0xb:%d", i), hook.TypeLog, at, at)
		st := states[i%len(states)]
		if st == hook.StatePending && ep == "ep_a" {
			pending = append(pending, id)
		}
		var fifo any
		if i%4 == 0 {
			fifo = "1"
		}
		exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number,
			block_hash, tx_hash, payload, state, attempts, retry_base, next_attempt_at, last_status, last_error,
			lease_owner, lease_until, created_at, updated_at, log_index, fifo_key)
			VALUES ($1, $2, $3, $4, 'log', $4, 1, $5, '0xb', '0xt', '{"n":1}', $6, $7, 1, $8, 200, 'e', $9, $8, $8, $8, $11, $10)`,
			id, app, ep, fmt.Sprintf("1:0xb:%d", i), i, st, i%3, at.Add(time.Hour), fmt.Sprintf("owner%d", i%2), fifo, int32(i))
		exec(t, pool, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code) VALUES ($1, $2, $3, 1, 500)`, id, ep, app)
	}
	exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload, state)
		VALUES ('msg_handmade', 'app_a', 'ep_a', 'x', 'log', 'x', 1, 1, '{}', 'pending')`)
	pending = append(pending, "msg_handmade")
	before := messageDigest(t, pool, `messages m CROSS JOIN LATERAL (SELECT m.*) s`)
	attemptsBefore := checksums(t, pool)["delivery_history"]

	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	from := `messages m JOIN message_states s ON s.id = m.id AND s.app_id = m.app_id`
	if after := messageDigest(t, pool, from); after != before {
		t.Errorf("messages and their states: before %s, after %s", before, after)
	}
	if got := checksums(t, pool)["delivery_history"]; got != attemptsBefore {
		t.Errorf("delivery_history: before %s, after %s", attemptsBefore, got)
	}
	var orphans int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM message_states) - (SELECT count(*) FROM messages)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("message_states has %d rows more than messages (%v)", orphans, err)
	}
	// The state left messages, and every partition has its twin.
	var stateCols int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'messages' AND column_name IN ('state', 'attempts', 'lease_owner', 'updated_at')`).Scan(&stateCols); err != nil || stateCols != 0 {
		t.Errorf("messages still has %d state columns (%v)", stateCols, err)
	}
	var unpaired []string
	rows, err := pool.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'messages'::regclass
		EXCEPT
		SELECT 'messages' || substr(c.relname, length('message_states') + 1), pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'message_states'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, bound string
		if err := rows.Scan(&name, &bound); err != nil {
			t.Fatal(err)
		}
		unpaired = append(unpaired, name+" "+bound)
	}
	if rows.Err() != nil || len(unpaired) > 0 {
		t.Errorf("messages partitions without a message_states twin of the same bounds: %v (%v)", unpaired, rows.Err())
	}
	// New partitions come in pairs.
	created, err := retention.Ensure(ctx, pool, now.Add(72*time.Hour), retention.Layout{Width: time.Hour, Ahead: 3})
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{}
	for _, name := range created {
		made[name] = true
	}
	pairs := 0
	for _, name := range created {
		if rest, ok := strings.CutPrefix(name, "messages_"); ok {
			pairs++
			if !made["message_states_"+rest] {
				t.Errorf("ensure created %s without its message_states twin: %v", name, created)
			}
		}
	}
	if pairs == 0 {
		t.Errorf("ensure 72 hours on created no messages partition: %v", created)
	}

	// The moved messages go on: ep_a's pending ones are claimed with
	// their payload and finished.
	l := msgstate.Lease{Owner: "d1", Until: now.Add(time.Minute), Now: now}
	claimed, err := msgstate.Claim(ctx, pool, pending, l)
	if err != nil || len(claimed) != len(pending) {
		t.Fatalf("claim %d moved pending messages: %d, %v", len(pending), len(claimed), err)
	}
	res := msgstate.Results{}
	for _, c := range claimed {
		if len(c.Payload) == 0 || c.AppID != "app_a" {
			t.Errorf("claimed %s: app %q, payload %q", c.ID, c.AppID, c.Payload)
		}
		res.IDs, res.States, res.Attempts = append(res.IDs, c.ID), append(res.States, hook.StateSucceeded), append(res.Attempts, int32(c.Attempts+1))
		res.Statuses, res.Errors, res.Nexts = append(res.Statuses, nil), append(res.Errors, ""), append(res.Nexts, nil)
	}
	if n, err := msgstate.Finish(ctx, pool, "d1", &res); err != nil || n != int64(len(res.IDs)) {
		t.Fatalf("finish: %d of %d recorded, %v", n, len(res.IDs), err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE id = ANY($1) AND state <> 'succeeded'`, pending).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d claimed messages not finished (%v)", left, err)
	}

	// Rolling back puts the states on messages again, every one.
	mid := messageDigest(t, pool, from)
	for version := int64(0); version != 86; {
		if _, err := m.Down(ctx); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
	}
	if down := messageDigest(t, pool, `messages m CROSS JOIN LATERAL (SELECT m.*) s`); down != mid {
		t.Errorf("rolled back to 00086: %s, before %s", down, mid)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if again := messageDigest(t, pool, from); again != mid {
		t.Errorf("up again: %s, before %s", again, mid)
	}
}
