package deliver

import (
	"net/http"
	"testing"
	"time"
)

// Messages held here longer than LeaseTimeout (queued behind a slow
// endpoint with one request at a time) keep their leases: the heartbeat
// renews the leases of held messages that are getting old, so the sweeper
// never takes them for a dead process's and none is sent twice. (It renews
// only those: a message held for a moment costs the heartbeat nothing.)
func TestHeldMessagesKeepTheirLeasesPastLeaseTimeout(t *testing.T) {
	e := newEnv(t)
	d := &e.cfg.Delivery
	d.ConcurrencyPerEndpoint = 1
	d.Timeout = 2 * time.Second
	d.LeaseTimeout = 3 * time.Second
	seen := &countingReceiver{seen: map[string]int{}}
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		time.Sleep(1200 * time.Millisecond)
		return seen.handle(n, r)
	})
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	const n = 5 // the last one waits about 5 s in the lane, past its first lease
	var ids []string
	for range n {
		id, _ := e.insertMessage(t, app, ep, "", 0)
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.offer(t, id, ep)
	}
	m, _ := e.start(t)
	e.drained(t, n)
	// A message claimed again (its lease ran out while it waited) would
	// still be held here, waiting for its second send.
	eventually(t, "nothing held, no lane left", func() bool {
		m.lanes.mu.Lock()
		defer m.lanes.mu.Unlock()
		return m.hold.count() == 0 && len(m.lanes.by) == 0
	})
	seen.check(t, n)
	for _, id := range ids {
		if r := e.msg(t, id); r.Attempts != 1 {
			t.Fatalf("message %s: %d attempts, want 1", id, r.Attempts)
		}
	}
}
