package deliver

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestMaxHeldLeavesJobsInTheStream: with the receiver holding every request
// open, a process holds no more than MaxHeld messages; the other jobs stay
// unread in the Redis stream (not read and dropped), and once the receiver
// answers every message is delivered exactly once.
func TestMaxHeldLeavesJobsInTheStream(t *testing.T) {
	e := newEnv(t)
	const maxHeld, perEndpoint, endpoints = 5, 10, 4
	e.cfg.Delivery.MaxHeld = maxHeld
	e.cfg.Delivery.SweepInterval = time.Hour // the sweeper would offer the waiting messages again
	gate := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		<-gate
		mu.Lock()
		seen[r.Header.Get("webhook-id")]++
		mu.Unlock()
		return 200, nil
	})
	app := e.app(t, "unlimited")
	var ids []string
	for i := 0; i < endpoints; i++ {
		ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
		for k := 0; k < perEndpoint; k++ {
			id, _ := e.message(t, app, ep, "")
			ids = append(ids, id)
		}
	}
	m, _ := e.start(t)
	held := m.hold.count
	eventually(t, "MaxHeld requests to arrive", func() bool { return rc.count() == maxHeld })
	unread := func() int64 {
		n, err := e.rdb.Do(context.Background(), e.rdb.B().Xlen().Key(e.keys().DeliverJobs()).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, "the rest of the jobs to stay in the stream", func() bool { return unread() == endpoints*perEndpoint-maxHeld })
	if h := held(); h != maxHeld {
		t.Errorf("held %d messages, want MaxHeld %d", h, maxHeld)
	}
	close(gate)
	for _, id := range ids {
		e.waitState(t, id, "succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(ids) {
		t.Errorf("receiver saw %d distinct webhooks, want %d", len(seen), len(ids))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("webhook %s delivered %d times", id, n)
		}
	}
	eventually(t, "held to drop to 0", func() bool { return held() == 0 })
}
