package deliver

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

func TestBreakerOpensAfterConsecutiveFailuresThenProbesAndCloses(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.BreakerThreshold = 3
	e.cfg.Delivery.BreakerCooldown = time.Minute
	e.cfg.Delivery.ConcurrencyPerEndpoint = 1
	var healthy atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		if healthy.Load() {
			return 200, nil
		}
		return 500, nil
	})
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,10h"})
	clock := &fakeClock{}
	var ids []string
	for i := 0; i < 10; i++ {
		id, _ := e.message(t, app, ep, "")
		ids = append(ids, id)
	}
	e.start(t, Options{Now: clock.Now})
	eventually(t, "3 failures", func() bool { return rc.count() >= 3 })
	time.Sleep(1500 * time.Millisecond)
	if n := rc.count(); n != 3 {
		t.Fatalf("breaker should be open after 3 failures; endpoint got %d requests", n)
	}
	clock.Advance(61 * time.Second) // cooldown over: one probe, still failing
	eventually(t, "probe", func() bool { return rc.count() == 4 })
	time.Sleep(time.Second)
	if n := rc.count(); n != 4 {
		t.Fatalf("a failed probe must reopen the breaker; got %d requests", n)
	}
	healthy.Store(true)
	clock.Advance(2*time.Minute + time.Second) // doubled cooldown
	for _, id := range ids[4:] {
		e.waitState(t, id, hook.StateSucceeded)
	}
	for _, id := range ids[:4] {
		if s := e.msg(t, id).State; s != hook.StateFailed {
			t.Fatalf("failed message is %s, want failed awaiting its retry", s)
		}
	}
}

func TestEndpointFailingLongerThanDisableAfterIsDisabledKeepingMessages(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,1h"})
	id, _ := e.message(t, app, ep, "")
	e.start(t)
	m := e.waitState(t, id, hook.StateFailed)
	var since *time.Time
	e.pool.QueryRow(context.Background(), `SELECT failing_since FROM endpoints WHERE id = $1`, ep).Scan(&since)
	if since == nil {
		t.Fatalf("failing_since not set after a failure")
	}
	// Pretend the failures began 6 days ago.
	e.pool.Exec(context.Background(), `UPDATE endpoints SET failing_since = now() - interval '6 days' WHERE id = $1`, ep)
	id2, _ := e.message(t, app, ep, "")
	eventually(t, "endpoint disabled", func() bool {
		var enabled bool
		e.pool.QueryRow(context.Background(), `SELECT enabled FROM endpoints WHERE id = $1`, ep).Scan(&enabled)
		return !enabled
	})
	if s := e.msg(t, id2).State; s != hook.StateFailed {
		t.Fatalf("second message is %s, want failed (kept for retry)", s)
	}
	if e.msg(t, id).State != hook.StateFailed || m.Attempts != 1 {
		t.Fatalf("messages must be kept when the endpoint is disabled")
	}
}

func TestSuccessClearsFailingSince(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	e.pool.Exec(context.Background(), `UPDATE endpoints SET failing_since = now() - interval '1 day' WHERE id = $1`, ep)
	id, _ := e.message(t, app, ep, "")
	e.start(t)
	e.waitState(t, id, hook.StateSucceeded)
	eventually(t, "failing_since cleared", func() bool {
		var since *time.Time
		e.pool.QueryRow(context.Background(), `SELECT failing_since FROM endpoints WHERE id = $1`, ep).Scan(&since)
		return since == nil
	})
}
