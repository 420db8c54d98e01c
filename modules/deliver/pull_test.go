package deliver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// drained waits until no message is waiting or delivering, failing when
// nothing moves for 30 s (not a timing bound: a stuck backlog never moves).
func (e *env) drained(t testing.TB, want int) {
	t.Helper()
	last, since := -1, time.Now()
	for {
		n := e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'succeeded'`)
		if n >= want {
			return
		}
		if n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) > 30*time.Second {
			t.Fatalf("backlog stuck: %d of %d messages succeeded", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countingReceiver counts requests per webhook-id.
type countingReceiver struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *countingReceiver) handle(_ int, r *http.Request) (int, http.Header) {
	c.mu.Lock()
	c.seen[r.Header.Get("webhook-id")]++
	c.mu.Unlock()
	return 204, nil
}

func (c *countingReceiver) check(t testing.TB, want int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) != want {
		t.Fatalf("receiver saw %d distinct webhooks, want %d", len(c.seen), want)
	}
	for id, n := range c.seen {
		if n != 1 {
			t.Fatalf("webhook %s received %d times", id, n)
		}
	}
}

// One endpoint with a backlog of 20,000 messages (200 times its lane's
// depth) gets every one of them once, with the sweeper effectively off: the
// lane pulls its backlog from Postgres whenever it has room. Before, the
// jobs a full queue refused were dropped and only the sweeper offered those
// messages again.
func TestHotEndpointDrainsItsBacklogWithoutTheSweeper(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 deliveries")
	}
	const n = 20000
	e, m, c, _, _ := startHotBacklog(t, n)
	e.drained(t, n)
	c.check(t, n)
	eventually(t, "nothing held", func() bool { return m.hold.count() == 0 })
}

// Many endpoints, each with more messages than its lane holds, and a
// process-wide cap below what they want together: every message is
// delivered once, with the sweeper effectively off.
func TestManyEndpointsWithBacklogsAllDrainWithoutTheSweeper(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.QueuePerEndpoint = 4
	e.cfg.Delivery.MaxHeld = 100
	const endpoints, per = 200, 15
	c := &countingReceiver{seen: map[string]int{}}
	rc := newReceiver(t, c.handle)
	app := e.app(t, "unlimited")
	eps := make([]string, endpoints)
	for i := range eps {
		eps[i], _ = e.endpoint(t, app, rc.URL, epOpt{})
	}
	benchMessages(t, e, app, eps, endpoints*per, func(i int) string { return fmt.Sprintf(`{"id":"1:0xabc:%d","type":"log"}`, i) })
	e.start(t)
	e.drained(t, endpoints*per)
	c.check(t, endpoints*per)
}

// A disabled endpoint's messages wait pending, not sent, however many there
// are; enabled again, it gets all of them (a backlog five times its lane's
// depth), with the sweeper effectively off.
func TestDisabledEndpointBacklogWaitsAndResumesOnEnable(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.QueuePerEndpoint = 20
	const n = 100
	c := &countingReceiver{seen: map[string]int{}}
	rc := newReceiver(t, c.handle)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET enabled = false WHERE id = $1`, ep); err != nil {
		t.Fatal(err)
	}
	benchMessages(t, e, app, []string{ep}, n, func(i int) string { return fmt.Sprintf(`{"id":"1:0xabc:%d","type":"log"}`, i) })
	m, _ := e.start(t)
	eventually(t, "the jobs read", func() bool {
		left, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(e.keys().DeliverJobs()).Build()).AsInt64()
		return err == nil && left == 0
	})
	time.Sleep(500 * time.Millisecond) // room for a wrong send to show
	if got := rc.count(); got != 0 {
		t.Fatalf("disabled endpoint got %d requests", got)
	}
	if p := e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'pending'`); p != n {
		t.Fatalf("%d messages pending, want %d", p, n)
	}
	if h := m.hold.count(); h != 0 {
		t.Fatalf("%d messages held for a disabled endpoint", h)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET enabled = true WHERE id = $1`, ep); err != nil {
		t.Fatal(err)
	}
	e.rdb.Do(ctx, e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(ep).Build())
	e.drained(t, n)
	c.check(t, n)
}

// A lane whose pull failed waits for nothing but its retry time: no job,
// attempt or sweep pokes it (the sweeper leaves a busy lane's backlog to the
// lane), so waiting the run loop's usual minute would leave its backlog
// pending that long (seen with Postgres connections dropped under load).
func TestLaneRetriesAFailedPullAtItsRetryTimeNotAfterAMinute(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := &lane{m: &Module{now: func() time.Time { return now }}, depth: 10}
	if d := l.nextPullIn(time.Minute); d != time.Minute {
		t.Fatalf("no backlog: waits %s, want the full minute", d)
	}
	l.hinted = 1
	l.pullAfter = now.Add(time.Second)
	if d := l.nextPullIn(time.Minute); d != time.Second {
		t.Fatalf("backlog, pull failed: waits %s, want 1s (until the retry)", d)
	}
	l.pullAfter = now.Add(-time.Second)
	if d := l.nextPullIn(time.Minute); d != time.Minute {
		t.Fatalf("backlog, retry time past (lane full): waits %s, want the minute (an attempt's end pokes it)", d)
	}
}

// A message that becomes pending behind a hot lane's pull cursor (handed
// back by a stopping process, released from a quota hold) is found while
// the backlog lasts: the lane's pulls go on from where the last one stopped
// (msgstate.Pull), and start from the oldest again every pullRestart, not
// only once the backlog has drained.
func TestMessageBehindTheLanesPullCursorIsFoundWhileTheBacklogLasts(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 deliveries")
	}
	const n = 20000
	e, late, succeeded := behindTheCursor(t, n, 200*time.Millisecond)
	e.waitState(t, late, "succeeded")
	if left := n + 1 - succeeded(); left == 0 {
		t.Fatal("the message behind the cursor was found only once the backlog had drained")
	} else {
		t.Logf("found with %d messages of the backlog left", left)
	}
	e.drained(t, n+1)
}

// With no restart before the backlog drains, the message behind the cursor
// is found by the pull that follows the last short one: a pull from a
// cursor that comes back short does not clear the lane's backlog hint.
func TestMessageBehindTheLanesPullCursorIsFoundWhenTheBacklogDrains(t *testing.T) {
	e, late, _ := behindTheCursor(t, 5000, time.Hour)
	e.waitState(t, late, "succeeded")
	e.drained(t, 5001)
}

// behindTheCursor starts a module on one endpoint with a backlog of n
// (its lane's pulls restarting from the oldest every restart) and, once
// 2,000 are delivered, adds a pending message an hour older than the
// backlog with no job, which only a pull from the oldest finds. It returns
// the message and a count of the succeeded ones.
func behindTheCursor(t *testing.T, n int, restart time.Duration) (*env, string, func() int) {
	t.Helper()
	e, m, _, app, ep := startHotBacklog(t, n)
	m.lanes.restart.Store(int64(restart))
	succeeded := func() int { return e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'succeeded'`) }
	eventually(t, "the lane to pull past its first messages", func() bool { return succeeded() >= 2000 })
	late := "msg_" + ulid.Make().String()
	if _, err := e.pool.Exec(context.Background(), `
		WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		VALUES ($1, $2, $3, '1:0xlate:0', 'log', '1:0xlate:0', 1, 0, '{}') RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, type, block_number)
		SELECT id, app_id, endpoint_id, 'pending', now() - interval '1 hour', type, block_number FROM m`, late, app, ep); err != nil {
		t.Fatal(err)
	}
	return e, late, succeeded
}

// startHotBacklog runs a module, its sweep an hour away, on one endpoint
// with a backlog of n messages (their jobs in the stream), and returns its
// receiver, application and endpoint.
func startHotBacklog(t *testing.T, n int) (*env, *Module, *countingReceiver, string, string) {
	t.Helper()
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	c := &countingReceiver{seen: map[string]int{}}
	rc := newReceiver(t, c.handle)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	benchMessages(t, e, app, []string{ep}, n, func(i int) string { return fmt.Sprintf(`{"id":"1:0xabc:%d","type":"log"}`, i) })
	m, _ := e.start(t)
	return e, m, c, app, ep
}
