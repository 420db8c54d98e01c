package deliver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// A deliver process killed with SIGKILL while 20 requests are in flight:
// another process retries its messages without waiting for their leases (an
// hour here, as is the sweep interval, so nothing else could move them
// during the test): the dead process's liveness key runs out and its
// messages are reclaimed. The attempts it was making are recorded as
// interrupted, and the receiver gets those webhooks again with the same
// webhook-id.
func TestKilledProcessMessagesAreRetriedByAnotherBeforeTheirLeasesRunOut(t *testing.T) {
	e := newChildEnv(t)
	e.cfg.Delivery.LeaseTimeout = time.Hour
	e.cfg.Delivery.SweepInterval = time.Hour

	// The child's requests hang until it dies; the survivor's are answered.
	var mu sync.Mutex
	seen := map[string][]string{} // webhook-id -> user agents
	rc := newReceiver(t, nil)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.Header.Get("User-Agent")
		mu.Lock()
		seen[r.Header.Get("webhook-id")] = append(seen[r.Header.Get("webhook-id")], ua)
		mu.Unlock()
		if ua == "ethhook/child" {
			io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
			<-r.Context().Done()
			return
		}
		w.WriteHeader(200)
	})
	app := e.app(t, "unlimited")
	var ids []string
	for range 2 {
		ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
		for range 10 { // the endpoint's concurrency: all in flight at once
			id, _ := e.message(t, app, ep, "")
			ids = append(ids, id)
		}
	}
	cmd := e.startChild(t, "ETHHOOK_DELIVER_CHILD_LEASE=1h")
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx := context.Background()
	// Wait until the child's liveness record lists all 20 attempts.
	eventually(t, "the child to report 20 attempts under way", func() bool {
		owners, _ := e.rdb.Do(ctx, e.rdb.B().Smembers().Key(e.prefix+"{deliver}:owners").Build()).AsStrSlice()
		for _, o := range owners {
			s, _ := e.rdb.Do(ctx, e.rdb.B().Get().Key(e.prefix+"{deliver}:sending:"+o).Build()).ToString()
			if len(strings.Fields(s)) == len(ids) {
				return true
			}
		}
		return false
	})
	cmd.Process.Kill() // SIGKILL: no hand back, no cleanup
	cmd.Wait()

	e.start(t)
	for _, id := range ids {
		e.waitState(t, id, hook.StateSucceeded)
	}
	var interrupted int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM delivery_history WHERE error_class = 'interrupted' AND attempt = 1`).Scan(&interrupted); err != nil {
		t.Fatal(err)
	}
	if interrupted != len(ids) {
		t.Errorf("%d interrupted attempts recorded, want %d", interrupted, len(ids))
	}
	for _, id := range ids {
		if m := e.msg(t, id); m.Attempts != 2 {
			t.Errorf("message %s: %d attempts, want 2 (interrupted, then delivered)", id, m.Attempts)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for wid, agents := range seen {
		if len(agents) != 2 || agents[0] != "ethhook/child" || agents[1] != "ethhook/1.2.3" {
			t.Errorf("webhook %s received by %v, want once from the killed process, then once from the survivor", wid, agents)
		}
	}
}

// After its own liveness renewal failed, a process judges nobody dead
// until it has renewed for livenessGrace: the others' keys may have run
// out in the same outage (a failover longer than livenessTTL), and judging
// them dead would send all their messages again.
func TestNoOwnerIsJudgedDeadRightAfterThisProcessCouldNotRenew(t *testing.T) {
	var g renewals
	t0 := time.Now()
	steps := []struct {
		ok   bool
		at   time.Duration
		want bool
	}{
		{true, 0, true}, // no failure yet
		{false, time.Second, false},
		{true, 2 * time.Second, false},
		{true, time.Second + livenessGrace - time.Millisecond, false},
		{true, time.Second + livenessGrace, true},
		{true, time.Second + livenessGrace + livenessEvery, true},
	}
	for i, s := range steps {
		if got := g.note(s.ok, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (renewed=%v at +%s): may judge others dead = %v, want %v", i, s.ok, s.at, got, s.want)
		}
	}
}
