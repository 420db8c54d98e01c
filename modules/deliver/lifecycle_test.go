package deliver

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/hook"
)

// gate is a receiver handler that holds every request until opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// countRows counts rows of a query with one argument.
func (e *env) countRows(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An endpoint deleted while 100 of its webhooks are in flight: the answers
// arrive for messages that no longer exist (deleted with the endpoint). They
// are dropped and counted; deliveries to another endpoint go on and are
// recorded, nothing is recorded for the deleted one, and the module stops
// (drains) when asked. Before, the writer retried the batch forever on
// delivery_history's foreign key (dropped since, migration 00089),
// recording nothing after it.
func TestEndpointDeletedMidFlightDoesNotJamDelivery(t *testing.T) {
	e := newEnv(t)
	const inFlight = 100
	e.cfg.Delivery.ConcurrencyPerEndpoint = inFlight
	e.cfg.Delivery.MaxInFlight = inFlight + 10
	g := newGate()
	slow := newReceiver(t, func(_ int, r *http.Request) (int, http.Header) { g.wait(r); return 200, nil })
	t.Cleanup(g.open) // before the receiver closes (cleanups run last first)
	fast := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	doomed, _ := e.endpoint(t, app, slow.URL, epOpt{})
	other, _ := e.endpoint(t, app, fast.URL, epOpt{})
	for range inFlight {
		e.message(t, app, doomed, "")
	}
	m, stop := e.start(t)
	eventually(t, "100 requests held by the slow receiver", func() bool { return slow.count() == inFlight })

	ctx := context.Background()
	e.deleteEndpoint(t, app, doomed)
	e.rdb.Do(ctx, e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(doomed).Build())
	g.open() // the 100 answers arrive for deleted messages

	var ids []string
	for range 20 {
		id, _ := e.message(t, app, other, "")
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitState(t, id, hook.StateSucceeded)
	}
	eventually(t, "the 100 results counted as dropped", func() bool {
		return testutil.ToFloat64(m.met.dropped.WithLabelValues("message_gone")) == inFlight
	})
	if n := e.countRows(t, `SELECT count(*) FROM delivery_history WHERE endpoint_id = $1`, doomed); n != 0 {
		t.Errorf("%d attempts recorded for the deleted endpoint", n)
	}
	if n := e.countRows(t, `SELECT count(*) FROM delivery_history WHERE endpoint_id = $1 AND status_code = 200`, other); n != len(ids) {
		t.Errorf("%d attempts recorded for the other endpoint, want %d", n, len(ids))
	}
	stop() // fails the test if Run does not return
	if n := e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'delivering'`); n != 0 {
		t.Errorf("%d messages left delivering after the drain", n)
	}
}

// An endpoint disabled while some of its webhooks are in flight and more
// are queued: the attempts in flight finish and are recorded, the queued
// messages are handed back pending (not sent, not failed), and they are
// delivered once the endpoint is enabled again.
func TestEndpointDisabledMidFlightFinishesInFlightAndKeepsQueued(t *testing.T) {
	e := newEnv(t)
	const slots, total = 5, 40
	e.cfg.Delivery.ConcurrencyPerEndpoint = slots
	g := newGate()
	rc := newReceiver(t, func(_ int, r *http.Request) (int, http.Header) { g.wait(r); return 200, nil })
	t.Cleanup(g.open)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	var ids []string
	for range total {
		id, _ := e.message(t, app, ep, "")
		ids = append(ids, id)
	}
	e.start(t)
	eventually(t, "the endpoint's slots busy", func() bool { return rc.count() == slots })

	ctx := context.Background()
	setEnabled := func(on bool) {
		if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET enabled = $2 WHERE id = $1`, ep, on); err != nil {
			t.Fatal(err)
		}
		e.rdb.Do(ctx, e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(ep).Build())
	}
	setEnabled(false)
	eventually(t, "queued messages handed back pending", func() bool {
		return e.countRows(t, `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND state = 'pending'`, ep) == total-slots
	})
	g.open()
	eventually(t, "the attempts in flight recorded", func() bool {
		return e.countRows(t, `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND state = 'succeeded'`, ep) == slots
	})
	time.Sleep(time.Second) // room for a wrong send to show
	if n := rc.count(); n != slots {
		t.Fatalf("disabled endpoint got %d requests, want the %d in flight", n, slots)
	}
	if n := e.countRows(t, `SELECT count(*) FROM delivery_history WHERE endpoint_id = $1`, ep); n != slots {
		t.Fatalf("%d attempts recorded, want %d", n, slots)
	}
	setEnabled(true)
	for _, id := range ids {
		e.waitState(t, id, hook.StateSucceeded)
	}
	if n := rc.count(); n != total {
		t.Fatalf("%d requests for %d messages", n, total)
	}
}
