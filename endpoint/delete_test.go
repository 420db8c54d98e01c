package endpoint

import (
	"context"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/tenant"
)

// Deleting an endpoint deletes the states of its messages still waiting
// (message_states has no foreign key, migration 00087), so none counts
// towards its application's quota or holds a partition in flight, and
// queues the rest of its history (messages, states, attempts) for the
// retention role's purge (00090), which deletes it all and leaves another
// endpoint's alone. Deleting the application does the same for all of its
// endpoints.
func TestDeleteEndpointForgetsItsWaitingStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	eps := e.endpoints(t, app, 3)
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
	// count returns endpoint ep's messages, states and attempts.
	count := func(ep string) [3]int {
		var n [3]int
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM messages WHERE endpoint_id = $1),
			(SELECT count(*) FROM message_states WHERE endpoint_id = $1),
			(SELECT count(*) FROM delivery_history WHERE endpoint_id = $1)`, ep).Scan(&n[0], &n[1], &n[2]); err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := [3]int{len(states), len(states), len(states)}
	if err := e.svc.Delete(ctx, hook.Operator, app, eps[0]); err != nil {
		t.Fatal(err)
	}
	if n := count(eps[0]); n[1] != 0 {
		t.Errorf("%d waiting states of the deleted endpoint left", n[1])
	}
	testenv.Purge(t, e.pool, time.Now())
	if n := count(eps[0]); n != [3]int{} {
		t.Errorf("the deleted endpoint's messages, states, attempts after the purge: %v, want none", n)
	}
	if n := count(eps[1]); n != all {
		t.Errorf("another endpoint's messages, states, attempts: %v, want %v", n, all)
	}
	if err := tenant.New(e.pool).DeleteApplication(ctx, hook.Operator, app); err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps[1:] {
		if n := count(ep); n[1] != 0 {
			t.Errorf("%d waiting states of %s left after deleting its application", n[1], ep)
		}
	}
	testenv.Purge(t, e.pool, time.Now())
	for _, ep := range eps[1:] {
		if n := count(ep); n != [3]int{} {
			t.Errorf("%s after its application's delete and the purge: %v, want nothing", ep, n)
		}
	}
}

// While an endpoint's delete is under way (its transaction open, as when
// the delete of a long history took seconds to hours), process's insert of
// a block's messages, one of them for that endpoint, goes on without
// waiting: nothing of the insert locks the endpoint's row (00090 dropped
// messages' key to endpoints, whose check waited for the delete and then
// failed the whole batch, every tenant's messages with it). lock_timeout
// turns such a wait into an error at once.
func TestDeleteUnderWayDoesNotHoldUpInsertsForIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	eps := e.endpoints(t, app, 2)
	deleting, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer deleting.Rollback(ctx)
	if _, err := deleting.Exec(ctx, `DELETE FROM endpoints WHERE id = $1`, eps[0]); err != nil {
		t.Fatal(err)
	}
	if err := msgstate.Forget(ctx, deleting, app, eps[:1]); err != nil {
		t.Fatal(err)
	}

	rows := msgstate.MakeRows(len(eps))
	for i, ep := range eps {
		rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i], rows.EventIDs[i] = tenant.NewID("msg"), app, ep, tenant.NewID("evt")
		rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.Payloads[i], rows.States[i] = "log", rows.EventIDs[i], 1, `{}`, hook.StatePending
	}
	inserting, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inserting.Rollback(ctx)
	if _, err := inserting.Exec(ctx, `SET LOCAL lock_timeout = '100ms'`); err != nil {
		t.Fatal(err)
	}
	got, err := msgstate.Insert(ctx, inserting, &rows, true)
	if err == nil {
		for got.Next() {
		}
		got.Close()
		err = got.Err()
	}
	if err == nil {
		err = inserting.Commit(ctx)
	}
	if err != nil {
		t.Fatalf("insert beside a delete under way: %v", err)
	}
	if err := deleting.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
