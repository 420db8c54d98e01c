package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/retention"
)

// 00090 drops the foreign keys of messages and holds to endpoints: a
// message or hold of an endpoint being deleted is accepted (the purge
// deletes it). Its Down deletes the messages, states, attempts and holds of
// endpoints that are gone, as the purge would have, and puts the keys back
// (messages' on every partition).
func TestMessagesLoseTheirEndpointKeyAndGetItBack(t *testing.T) {
	ctx := context.Background()
	pool, m := migratedTo(t, 89)
	now := time.Now()
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: time.Hour, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpTo(ctx, 90); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `INSERT INTO applications (id, name) VALUES ('app_a', 'a')`)
	exec(t, pool, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_a', 'app_a', 'http://x.test/', '\x00')`)
	for i, ep := range []string{"ep_a", "ep_gone"} {
		id := hook.MessageID(ep, "1:0xa:1", hook.TypeLog, now, now)
		exec(t, pool, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, 'app_a', $2, $1, 'log', $1, 1, $3, '{}')`, id, ep, i)
		exec(t, pool, `INSERT INTO message_states (id, app_id, endpoint_id, state, type) VALUES ($1, 'app_a', $2, 'succeeded', 'log')`, id, ep)
		exec(t, pool, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, $2, 'app_a', 1)`, id, ep)
		exec(t, pool, `INSERT INTO process_holds (endpoint_id, event_id, app_id, chain_id, block_number, release_block, state)
			VALUES ($1, 'h', 'app_a', 1, 1, 13, 'held')`, ep)
	}

	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"messages", "message_states", "delivery_history", "process_holds"} {
		var gone, kept int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE endpoint_id = 'ep_gone'), count(*) FILTER (WHERE endpoint_id = 'ep_a') FROM `+tbl).
			Scan(&gone, &kept); err != nil {
			t.Fatal(err)
		}
		if gone != 0 || kept != 1 {
			t.Errorf("%s after the rollback: %d rows of the missing endpoint, %d of ep_a; want 0 and 1", tbl, gone, kept)
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		VALUES ($1, 'app_a', 'ep_gone', 'x', 'log', 'x', 1, 9, '{}')`, hook.MessageID("ep_gone", "1:0xa:2", hook.TypeLog, now, now))
	if sqlState(err) != "23503" {
		t.Errorf("message of a missing endpoint after the rollback: %v, want 23503", err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO process_holds (endpoint_id, event_id, app_id, chain_id, block_number, release_block, state)
		VALUES ('ep_gone', 'h2', 'app_a', 1, 1, 13, 'held')`)
	if sqlState(err) != "23503" {
		t.Errorf("hold of a missing endpoint after the rollback: %v, want 23503", err)
	}
}
