package deliver

import (
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// TestIdleLaneLingersForItsEndpointsNextMessageThenRetires: a lane that has
// sent everything it had stays a moment (laneLinger) and sends the
// endpoint's next message itself, so an endpoint sent to every second does
// not start and tear down a lane per webhook; once nothing comes it
// retires, and lingering lanes are counted (and capped).
func TestIdleLaneLingersForItsEndpointsNextMessageThenRetires(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	m, _ := e.start(t)
	m.lanes.linger.Store(int64(time.Minute)) // long enough for the second message on any machine
	current := func() (*lane, int) {
		m.lanes.mu.Lock()
		defer m.lanes.mu.Unlock()
		return m.lanes.by[ep], m.lanes.lingering
	}
	first, _ := e.message(t, app, ep, `{"n":1}`)
	e.waitState(t, first, hook.StateSucceeded)
	var l1 *lane
	eventually(t, "the idle lane lingering", func() bool {
		l, n := current()
		l1 = l
		return l != nil && n == 1
	})
	second, _ := e.message(t, app, ep, `{"n":2}`)
	e.waitState(t, second, hook.StateSucceeded)
	eventually(t, "the same lane lingering again", func() bool {
		l, n := current()
		if l != l1 {
			t.Fatalf("the second message went through lane %p, want the lingering %p", l, l1)
		}
		return n == 1
	})
	m.lanes.linger.Store(int64(50 * time.Millisecond))
	l1.poke() // lingers again, briefly this time
	eventually(t, "the lane retired after its linger", func() bool {
		l, n := current()
		return l == nil && n == 0
	})
	if rc.count() != 2 {
		t.Fatalf("receiver got %d webhooks, want 2", rc.count())
	}
}
