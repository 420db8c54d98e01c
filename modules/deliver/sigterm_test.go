package deliver

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// A child deliver process with 100 webhooks in flight to an endpoint that
// is deleted and 100 to one that is disabled: it keeps delivering to a third
// endpoint meanwhile, records the disabled endpoint's answers, drops the
// deleted one's, and exits on SIGTERM leaving nothing delivering.
func TestDeleteAndDisableWith100InFlightThenSIGTERMDrains(t *testing.T) {
	e := newChildEnv(t)
	const inFlight = 100
	g := newGate()
	slow := newReceiver(t, func(_ int, r *http.Request) (int, http.Header) { g.wait(r); return 200, nil })
	t.Cleanup(g.open)
	fast := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	doomed, _ := e.endpoint(t, app, slow.URL, epOpt{})
	paused, _ := e.endpoint(t, app, slow.URL, epOpt{})
	other, _ := e.endpoint(t, app, fast.URL, epOpt{})
	for range inFlight {
		e.message(t, app, doomed, "")
		e.message(t, app, paused, "")
	}
	cmd := e.startChild(t, "ETHHOOK_DELIVER_CHILD_CONCURRENCY=100")
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // if it is still running (a failed test)
		<-waited
	})
	eventually(t, "200 requests held by the slow receiver", func() bool { return slow.count() == 2*inFlight })

	ctx := context.Background()
	e.deleteEndpoint(t, app, doomed)
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET enabled = false WHERE id = $1`, paused); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{doomed, paused} {
		e.rdb.Do(ctx, e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(id).Build())
	}
	var ids []string
	for range 20 {
		id, _ := e.message(t, app, other, "")
		ids = append(ids, id)
	}
	for _, id := range ids { // while the 200 are still held
		e.waitState(t, id, hook.StateSucceeded)
	}
	g.open()
	eventually(t, "the disabled endpoint's answers recorded", func() bool {
		return e.countRows(t, `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND state = 'succeeded'`, paused) == inFlight
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("child exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second): // a hang, not a timing bound
		t.Fatal("child did not exit within 60 s of SIGTERM")
	}
	if n := e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'delivering'`); n != 0 {
		t.Errorf("%d messages left delivering after the drain", n)
	}
	if n := e.countRows(t, `SELECT count(*) FROM delivery_history WHERE endpoint_id = $1`, doomed); n != 0 {
		t.Errorf("%d attempts recorded for the deleted endpoint", n)
	}
}
