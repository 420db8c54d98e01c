package deliver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/sign"
)

// TestOperationalEndpointGetsSignedEventsForDisabledBreakerAndDeadLetter:
// the operator's endpoint subscribes to endpoint.disabled, breaker.opened
// and dead_letter.created; a customer endpoint answering 410 (final: the
// message is dead and the endpoint disabled) and one answering 500 (its
// breaker opens after one failure) produce one webhook of each type, sent
// by the ordinary delivery path: Standard Webhooks headers, a signature
// that verifies with the operational endpoint's secret, webhook-id = id.
func TestOperationalEndpointGetsSignedEventsForDisabledBreakerAndDeadLetter(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.BreakerThreshold = 1
	e.cfg.Delivery.BreakerCooldown = time.Hour
	var mu sync.Mutex
	got := map[string]map[string]any{} // type -> data
	opsRC := newReceiver(t, nil)
	gone := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 410, nil })
	failing := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 500, nil })

	operator := e.app(t, "")
	opsEP, opsSecret := e.endpoint(t, operator, opsRC.URL, epOpt{})
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET ops_events = $2 WHERE id = $1`, opsEP,
		[]string{ops.BreakerOpened, ops.DeadLetterCreated, ops.EndpointDisabled}); err != nil {
		t.Fatal(err)
	}
	app := e.app(t, "")
	goneEP, _ := e.endpoint(t, app, gone.URL, epOpt{})
	failEP, _ := e.endpoint(t, app, failing.URL, epOpt{schedule: "0s,10h"})
	deadID, _ := e.message(t, app, goneEP, "")
	e.message(t, app, failEP, "")
	e.start(t)
	e.waitState(t, deadID, hook.StateDead)

	key, err := sign.Key(opsSecret)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "three operational webhooks", func() bool {
		for _, r := range opsRC.got() {
			if err := sign.Verify(key, r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.header.Get("webhook-signature"), r.body, time.Now(), 5*time.Minute); err != nil {
				t.Fatalf("operational webhook does not verify: %v\n%s", err, r.body)
			}
			var p struct {
				ID   string         `json:"id"`
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if p.ID != r.header.Get("webhook-id") || !strings.HasPrefix(p.ID, "ops:"+p.Type+":") {
				t.Fatalf("webhook-id %q, body id %q, type %q", r.header.Get("webhook-id"), p.ID, p.Type)
			}
			mu.Lock()
			got[p.Type] = p.Data
			mu.Unlock()
		}
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	if d := got[ops.EndpointDisabled]; d["endpoint_id"] != goneEP || !strings.Contains(d["reason"].(string), "410") {
		t.Errorf("endpoint.disabled data %v, want endpoint %s and a reason naming 410", d, goneEP)
	}
	if d := got[ops.DeadLetterCreated]; d["message_id"] != deadID || d["endpoint_id"] != goneEP || d["last_status"] != float64(410) {
		t.Errorf("dead_letter.created data %v, want message %s of %s, status 410", d, deadID, goneEP)
	}
	if d := got[ops.BreakerOpened]; d["endpoint_id"] != failEP && d["endpoint_id"] != goneEP {
		t.Errorf("breaker.opened data %v, want a customer endpoint", d)
	}
	// Messages of the operator's application, like any other: listed,
	// retried, replayable. None is about the operational endpoint itself.
	var n int
	e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE endpoint_id = $1 AND type LIKE '%.%'`, opsEP).Scan(&n)
	if n < 3 {
		t.Fatalf("%d operational messages stored, want at least 3", n)
	}
}

// TestOperationalEventIsQueuedOncePerOccurrence: two processes reporting
// the same occurrence (same type and key) make one message.
func TestOperationalEventIsQueuedOncePerOccurrence(t *testing.T) {
	e := newEnv(t)
	operator := e.app(t, "")
	opsEP, _ := e.endpoint(t, operator, "https://ops.example.com/hook", epOpt{})
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET ops_events = $2 WHERE id = $1`, opsEP, []string{ops.QuotaReached}); err != nil {
		t.Fatal(err)
	}
	em := ops.New(e.pool, e.rdb, e.keys())
	ev := ops.Event{Type: ops.QuotaReached, Key: "app_1:2026-12", Data: map[string]any{"app_id": "app_1"}}
	first, err := em.Emit(context.Background(), ev)
	if err != nil || len(first) != 1 {
		t.Fatalf("first emit: %v %v", first, err)
	}
	second, err := em.Emit(context.Background(), ev)
	if err != nil || len(second) != 0 {
		t.Fatalf("second emit of the same occurrence queued %v (%v), want nothing", second, err)
	}
	if _, err := em.Emit(context.Background(), ops.Event{Type: "quota.nearly"}); err == nil {
		t.Fatal("an unknown type was emitted")
	}
	// Not subscribed: nothing.
	none, err := em.Emit(context.Background(), ops.Event{Type: ops.IngestStalled, Key: "1:5:0xa"})
	if err != nil || len(none) != 0 {
		t.Fatalf("unsubscribed type queued %v (%v)", none, err)
	}
}
