package process

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// An application at its plan's storage limit (stored messages plus
// attempts, here one dead message tried four times) gets its new messages
// stored held, as at the monthly quota, and not queued.
func TestMessagesOverTheStorageLimitAreHeld(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints, max_stored) VALUES ('small', 'Small', 0, 0, 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE applications SET plan_id = 'small' WHERE id = $1`, e.app); err != nil {
		t.Fatal(err)
	}
	fast := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	if _, err := e.pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		VALUES ('msg_old', $1, $2, 'old', 'log', 'old', 1, 1, '{}') RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
		SELECT id, app_id, endpoint_id, 'dead', 4, created_at, type, block_number, log_index, fifo_key FROM m`, e.app, fast.ID); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.publish(transfer("st", 7, 0, token, alice, bob, 1))
	e.eventually("the endpoint got its message", func() bool { return e.count(fast.ID) == 2 })
	e.eventually("stream drained", e.drained)
	jobs := e.jobs()
	for _, m := range e.messages("") {
		if m.ID == "msg_old" {
			continue
		}
		if m.State != hook.StateQuotaExceeded {
			t.Fatalf("message over the storage limit in state %q, want %q", m.State, hook.StateQuotaExceeded)
		}
		if jobs[m.ID] != 0 {
			t.Fatalf("message %s over the storage limit was queued", m.ID)
		}
	}
}
