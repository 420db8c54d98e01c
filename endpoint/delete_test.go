package endpoint

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/tenant"
)

// Deleting an endpoint deletes its messages (by cascade), the states of
// those still waiting (message_states has no foreign key, migration
// 00087), so none counts towards its application's quota or holds a
// partition in flight, and its attempts (nor has delivery_history, 00089);
// another endpoint's states and attempts stay. Deleting the application
// does the same for all of its endpoints.
func TestDeleteEndpointForgetsItsWaitingStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	var eps []string
	for range 3 {
		ep, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep.ID)
	}
	states := []string{hook.StatePending, hook.StateFailed, hook.StateQuotaExceeded}
	rows := msgstate.MakeRows(len(eps) * len(states))
	for i := range rows.IDs {
		ep, st := eps[i/len(states)], states[i%len(states)]
		rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i], rows.EventIDs[i] = tenant.NewID("msg"), app, ep, tenant.NewID("evt")
		rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.Payloads[i], rows.States[i] = "log", rows.EventIDs[i], 1, `{}`, st
	}
	got, err := msgstate.Insert(ctx, e.pool, &rows, false)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
	// One attempt each (delivery_history has no foreign key either, 00089).
	if _, err := e.pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt)
		SELECT id, endpoint_id, app_id, 1 FROM message_states WHERE app_id = $1`, app); err != nil {
		t.Fatal(err)
	}
	count := func(ep string) int {
		var n, a int
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM message_states WHERE endpoint_id = $1),
			(SELECT count(*) FROM delivery_history WHERE endpoint_id = $1)`, ep).Scan(&n, &a); err != nil {
			t.Fatal(err)
		}
		if a != n {
			t.Errorf("endpoint %s: %d states and %d attempts, want as many", ep, n, a)
		}
		return n
	}
	if err := e.svc.Delete(ctx, hook.Operator, app, eps[0]); err != nil {
		t.Fatal(err)
	}
	if n := count(eps[0]); n != 0 {
		t.Errorf("%d waiting states of the deleted endpoint left", n)
	}
	if n := count(eps[1]); n != len(states) {
		t.Errorf("%d states of another endpoint, want %d", n, len(states))
	}
	if err := tenant.New(e.pool).DeleteApplication(ctx, hook.Operator, app); err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps[1:] {
		if n := count(ep); n != 0 {
			t.Errorf("%d waiting states of %s left after deleting its application", n, ep)
		}
	}
}
