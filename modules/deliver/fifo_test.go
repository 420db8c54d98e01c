package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// fifoEndpoint makes an endpoint with ordering fifo (and fifo_key).
func (e *env) fifoEndpoint(t testing.TB, app, url, fifoKey, schedule string) string {
	t.Helper()
	ep, _ := e.endpoint(t, app, url, epOpt{schedule: schedule})
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET ordering = 'fifo', fifo_key = $2 WHERE id = $1`, ep, fifoKey); err != nil {
		t.Fatal(err)
	}
	return ep
}

// ordered is one message of a FIFO endpoint, as process writes it.
type ordered struct {
	block, index int
	typ, group   string
}

func (o ordered) key() string { return fmt.Sprintf("%s %d:%d %s", o.group, o.block, o.index, o.typ) }

// insertOrdered inserts a pending message of a FIFO endpoint whose payload
// says where it is in chain order, and XADDs its job.
func (e *env) insertOrdered(t testing.TB, app, ep string, o ordered) string {
	t.Helper()
	id := "msg_" + ulid.Make().String()
	eventID := fmt.Sprintf("1:0x%064x:%d", o.block, o.index)
	wid := eventID
	if o.typ == "log.removed" {
		wid += ":removed"
	}
	body, _ := json.Marshal(map[string]any{"id": eventID, "type": o.typ, "block": o.block, "index": o.index, "group": o.group})
	_, err := e.pool.Exec(context.Background(), `
		WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, payload,
			log_index, fifo_key)
		VALUES ($1, $2, $3, $4, $5, $6, 1, $7, '0xb', $8, $9, $10) RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
		SELECT id, app_id, endpoint_id, 'pending', 0, created_at, type, block_number, log_index, fifo_key FROM m`,
		id, app, ep, eventID, o.typ, wid, o.block, string(body), o.index, o.group)
	if err != nil {
		t.Fatal(err)
	}
	e.offer(t, id, ep)
	return id
}

// orderLog records what an ordered receiver got, request by request.
type orderLog struct {
	mu   sync.Mutex
	reqs []orderReq
	fail func(o ordered) int // status to answer, 0 = 200
}

type orderReq struct {
	o      ordered
	status int
}

func (l *orderLog) handle(_ int, r *http.Request) (int, http.Header) {
	var p struct {
		Type         string
		Block, Index int
		Group        string
	}
	body, _ := r.Context().Value(bodyKey{}).([]byte)
	_ = json.Unmarshal(body, &p)
	o := ordered{block: p.Block, index: p.Index, typ: p.Type, group: p.Group}
	status := 200
	l.mu.Lock()
	if l.fail != nil {
		if s := l.fail(o); s != 0 {
			status = s
		}
	}
	l.reqs = append(l.reqs, orderReq{o, status})
	l.mu.Unlock()
	return status, nil
}

type bodyKey struct{}

// newOrderedReceiver is a receiver whose handler sees the request body.
func newOrderedReceiver(t testing.TB, l *orderLog) *receiver {
	var rc *receiver
	rc = newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		rc.mu.Lock()
		body := rc.reqs[n-1].body
		rc.mu.Unlock()
		return l.handle(n, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
	return rc
}

func (l *orderLog) got() []orderReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]orderReq(nil), l.reqs...)
}

func before(a, b ordered) bool {
	if a.block != b.block {
		return a.block < b.block
	}
	if a.index != b.index {
		return a.index < b.index
	}
	return a.typ < b.typ
}

// checkOrder fails unless, per group, the requests (retries included) came
// in chain order: no message was sent before every earlier one of its group
// had succeeded (or was dead, when dead says so).
func checkOrder(t testing.TB, reqs []orderReq, dead func(ordered) bool) {
	t.Helper()
	last := map[string]orderReq{}
	for i, r := range reqs {
		p, ok := last[r.o.group]
		switch {
		case !ok:
		case p.o == r.o: // a retry of the same message
			if p.status < 300 {
				t.Fatalf("request %d: %s sent again after it succeeded", i, r.o.key())
			}
		case before(r.o, p.o):
			t.Fatalf("request %d: %s sent after %s", i, r.o.key(), p.o.key())
		case p.status >= 300 && (dead == nil || !dead(p.o)):
			t.Fatalf("request %d: %s sent while %s before it had failed (status %d) and was not dead", i, r.o.key(), p.o.key(), p.status)
		}
		last[r.o.group] = r
	}
}

// A FIFO endpoint gets its webhooks in chain order (block, log index), each
// once, although its messages were written out of order and its receiver
// fails one request in five: a failing message holds the later ones back
// until its retry succeeds.
func TestFIFOEndpointGetsChainOrderFromAFlakyReceiver(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.QueuePerEndpoint = 20 // several pulls per group
	rnd := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	l := &orderLog{fail: func(ordered) int {
		rmu.Lock()
		defer rmu.Unlock()
		if rnd.Float64() < 0.2 {
			return 503
		}
		return 0
	}}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "", strings.Repeat("0s,", 30)+"0s")
	const blocks, perBlock = 40, 5
	var all []ordered
	for b := 1; b <= blocks; b++ {
		for i := range perBlock {
			all = append(all, ordered{block: 100 + b, index: i, typ: "log", group: "1"})
		}
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, o := range all {
		e.insertOrdered(t, app, ep, o)
	}
	e.start(t)
	e.drained(t, len(all))
	reqs := l.got()
	checkOrder(t, reqs, nil)
	ok := map[string]bool{}
	failed := 0
	for _, r := range reqs {
		if r.status < 300 {
			ok[r.o.key()] = true
		} else {
			failed++
		}
	}
	if len(ok) != len(all) || failed == 0 {
		t.Fatalf("%d distinct webhooks succeeded (want %d), %d requests failed (want some)", len(ok), len(all), failed)
	}
}

// With a fifo_key, each key keeps its own order: a key whose every request
// fails (its retry an hour away) holds back only its own later messages;
// the other keys are delivered in full, in order.
func TestFIFOKeyStalledKeyDoesNotHoldBackOthers(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.QueuePerEndpoint = 10
	l := &orderLog{fail: func(o ordered) int {
		if o.group == "1/0xbad" {
			return 500
		}
		return 0
	}}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "topic1", "0s,1h")
	groups := []string{"1/0xaaa", "1/0xbad", "1/0xccc"}
	var stalled []string
	for b := 1; b <= 30; b++ {
		for i, g := range groups {
			id := e.insertOrdered(t, app, ep, ordered{block: b, index: i, typ: "log", group: g})
			if g == "1/0xbad" {
				stalled = append(stalled, id)
			}
		}
	}
	e.start(t)
	e.drained(t, 60)
	first := e.waitState(t, stalled[0], "failed")
	if first.Attempts != 1 {
		t.Fatalf("stalled key's first message: %d attempts, want 1", first.Attempts)
	}
	reqs := l.got()
	checkOrder(t, reqs, nil)
	bad := 0
	for _, r := range reqs {
		if r.o.group == "1/0xbad" {
			bad++
		}
	}
	if bad != 1 {
		t.Fatalf("stalled key got %d requests, want 1 (its later messages wait behind the failed one)", bad)
	}
	if n := e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'pending' AND fifo_key = '1/0xbad'`); n != len(stalled)-1 {
		t.Fatalf("%d of the stalled key's messages pending, want %d", n, len(stalled)-1)
	}
}

// A message that is dead (its answer final) lets its FIFO lane move on to
// the next one, and its attempt row says so.
func TestFIFODeadMessageLetsTheLaneMoveOnAndSaysSo(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	doomed := ordered{block: 5, index: 0, typ: "log", group: "1"}
	l := &orderLog{fail: func(o ordered) int {
		if o == doomed {
			return 400 // final: dead at once
		}
		return 0
	}}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "", "0s,1h")
	var deadID string
	for b := 1; b <= 10; b++ {
		id := e.insertOrdered(t, app, ep, ordered{block: b, index: 0, typ: "log", group: "1"})
		if b == 5 {
			deadID = id
		}
	}
	e.start(t)
	e.drained(t, 9)
	e.waitState(t, deadID, "dead")
	checkOrder(t, l.got(), func(o ordered) bool { return o == doomed })
	var errText string
	if err := e.pool.QueryRow(context.Background(), `SELECT error FROM delivery_history WHERE message_id = $1`, deadID).Scan(&errText); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, fifoMovedOn) {
		t.Fatalf("dead message's attempt error %q does not say the lane moved on", errText)
	}
}

// A log.removed is delivered after the log it retracts, although both wait
// at once and the removal was written first.
func TestFIFORemovalArrivesAfterItsLog(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	l := &orderLog{}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "", "")
	e.insertOrdered(t, app, ep, ordered{block: 7, index: 2, typ: "log.removed", group: "1"})
	e.insertOrdered(t, app, ep, ordered{block: 8, index: 0, typ: "log", group: "1"})
	e.insertOrdered(t, app, ep, ordered{block: 7, index: 2, typ: "log", group: "1"})
	e.insertOrdered(t, app, ep, ordered{block: 7, index: 1, typ: "log", group: "1"})
	e.start(t)
	e.drained(t, 4)
	var got []string
	for _, r := range l.got() {
		got = append(got, fmt.Sprintf("%d:%d %s", r.o.block, r.o.index, r.o.typ))
	}
	want := "7:1 log,7:2 log,7:2 log.removed,8:0 log"
	if strings.Join(got, ",") != want {
		t.Fatalf("received %s, want %s", strings.Join(got, ","), want)
	}
}

// More ordering groups than one pull looks at (fifoGroupsPerPull), the
// first ones in key order all stalled: pulls go round the groups, so the
// groups after them are delivered too.
func TestFIFOPullsGoRoundMoreGroupsThanOnePullLooksAt(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.BreakerThreshold = 1 << 20 // the failures are the point: the breaker must not pause the endpoint
	stalled := fifoGroupsPerPull + 10
	group := func(i int) string { return fmt.Sprintf("1/0x%04d", i) } // key order = i order
	l := &orderLog{fail: func(o ordered) int {
		var i int
		fmt.Sscanf(o.group, "1/0x%d", &i)
		if i < stalled {
			return 500
		}
		return 0
	}}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "contract", "0s,1h")
	const free = 20
	for b := 1; b <= 2; b++ {
		for i := range stalled + free {
			e.insertOrdered(t, app, ep, ordered{block: b, index: i, typ: "log", group: group(i)})
		}
	}
	e.start(t)
	e.drained(t, 2*free)
	checkOrder(t, l.got(), nil)
	// Each stalled group's first message fails once (its retry is an hour
	// away); none of the groups' later messages is tried. The last stalled
	// groups may be tried after the free ones drained.
	failed := func() int {
		return e.countRows(t, `SELECT count(*) FROM message_states WHERE state = 'failed'`)
	}
	eventually(t, "every stalled group tried", func() bool { return failed() >= stalled })
	if n := failed(); n != stalled {
		t.Fatalf("%d messages failed, want one per stalled group (%d)", n, stalled)
	}
}

// A FIFO endpoint created with history: its live messages wait while the
// history runs, so the history's older messages, made after them, still
// arrive first, and all in chain order.
func TestFIFOEndpointWithHistoryGetsHistoryBeforeLive(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	l := &orderLog{}
	rc := newOrderedReceiver(t, l)
	app := e.app(t, "unlimited")
	ep := e.fifoEndpoint(t, app, rc.URL, "", "")
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO endpoint_history (endpoint_id, app_id, chain_id, from_block, state) VALUES ($1, $2, 1, 1, 'running')`, ep, app); err != nil {
		t.Fatal(err)
	}
	// A second FIFO endpoint without history is the sync point: once its
	// message arrived, the lanes have pulled what they could.
	sl := &orderLog{}
	sentinel := e.fifoEndpoint(t, app, newOrderedReceiver(t, sl).URL, "", "")
	e.insertOrdered(t, app, ep, ordered{block: 100, index: 0, typ: "log", group: "1"})
	e.insertOrdered(t, app, ep, ordered{block: 101, index: 0, typ: "log", group: "1"})
	e.start(t)
	e.insertOrdered(t, app, sentinel, ordered{block: 100, index: 0, typ: "log", group: "1"})
	eventually(t, "the endpoint without history delivered", func() bool { return len(sl.got()) == 1 })
	e.insertOrdered(t, app, ep, ordered{block: 101, index: 1, typ: "log", group: "1"})
	if got := l.got(); len(got) != 0 {
		t.Fatalf("live messages delivered while the history runs: %+v", got)
	}
	var last string
	for b := 1; b <= 3; b++ {
		last = e.insertOrdered(t, app, ep, ordered{block: b, index: 0, typ: "log", group: "1"})
	}
	if _, err := e.pool.Exec(ctx, `UPDATE endpoint_history SET state = 'done' WHERE endpoint_id = $1`, ep); err != nil {
		t.Fatal(err)
	}
	e.offer(t, last, ep) // the hint after the history is done
	eventually(t, "every message", func() bool { return len(l.got()) == 6 })
	var got []string
	for _, r := range l.got() {
		got = append(got, fmt.Sprintf("%d:%d", r.o.block, r.o.index))
	}
	if want := "1:0,2:0,3:0,100:0,101:0,101:1"; strings.Join(got, ",") != want {
		t.Fatalf("received %s, want %s", strings.Join(got, ","), want)
	}
}
