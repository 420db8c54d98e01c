package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// verifyStandardWebhook is an independent implementation of the Standard
// Webhooks verification (https://www.standardwebhooks.com/): decode the
// whsec_ secret, HMAC-SHA256 "id.timestamp.body", compare with any of the
// space-separated "v1,<base64>" signatures.
func verifyStandardWebhook(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Split(h.Get("webhook-signature"), " ") {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

func TestDeliveredWebhookIsSignedPerStandardWebhooksAndLogged(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		return 200, http.Header{"Content-Type": {"text/plain"}, "X-Request-Id": {"r-1"}, "Set-Cookie": {"a=b"}}
	})
	app := e.app(t, "")
	ep, secret := e.endpoint(t, app, rc.URL+"/hook", epOpt{})
	payload := `{"id": "1:0xabc:0", "type": "log", "chain": {"id": 1}}`
	id, wid := e.message(t, app, ep, payload)
	before := time.Now()
	e.start(t)
	e.waitState(t, id, hook.StateSucceeded)

	got := rc.got()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if !verifyStandardWebhook(secret, r.header, r.body) {
		t.Fatalf("signature %q does not verify", r.header.Get("webhook-signature"))
	}
	var want, have any
	json.Unmarshal([]byte(payload), &want)
	if err := json.Unmarshal(r.body, &have); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if wb, _ := json.Marshal(want); string(wb) != string(mustJSON(have)) {
		t.Fatalf("body %s, want %s", r.body, payload)
	}
	if r.header.Get("webhook-id") != wid || r.header.Get("Content-Type") != "application/json" || r.header.Get("User-Agent") != "ethhook/1.2.3" {
		t.Fatalf("headers: %v", r.header)
	}
	ts, _ := strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
	if d := time.Unix(ts, 0).Sub(before); d < -2*time.Second || d > time.Minute {
		t.Fatalf("webhook-timestamp %d is not now", ts)
	}

	var (
		attempt, latency               int
		status                         *int
		class, errText, excerpt, appID string
		reqH, respH                    map[string]string
	)
	err := e.pool.QueryRow(context.Background(), `
		SELECT attempt, status_code, error_class, error, response_excerpt, request_headers, response_headers, latency_ms, app_id
		FROM delivery_history WHERE message_id = $1 AND endpoint_id = $2`, id, ep).
		Scan(&attempt, &status, &class, &errText, &excerpt, &reqH, &respH, &latency, &appID)
	if err != nil {
		t.Fatal(err)
	}
	if attempt != 1 || status == nil || *status != 200 || class != "" || errText != "" || excerpt != "answer 1" || appID != app || latency < 0 {
		t.Fatalf("attempt row: attempt %d status %v class %q err %q excerpt %q app %s", attempt, status, class, errText, excerpt, appID)
	}
	if reqH["webhook-id"] != wid || reqH["webhook-signature"] == "" || reqH["user-agent"] != "ethhook/1.2.3" {
		t.Fatalf("request headers: %v", reqH)
	}
	for _, v := range reqH {
		if strings.Contains(v, strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("request headers contain the secret")
		}
	}
	if respH["x-request-id"] != "r-1" || respH["content-type"] != "text/plain" || respH["set-cookie"] != "" {
		t.Fatalf("response headers: %v", respH)
	}
	m := e.msg(t, id)
	if m.Attempts != 1 || m.LastStatus == nil || *m.LastStatus != 200 {
		t.Fatalf("message row: %+v", m)
	}
	var deliveries int64
	eventually(t, "usage counted", func() bool {
		e.pool.QueryRow(context.Background(), `SELECT COALESCE(sum(deliveries), 0) FROM usage WHERE app_id = $1
			AND month = date_trunc('month', now() AT TIME ZONE 'UTC')::date`, app).Scan(&deliveries)
		return deliveries == 1
	})
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// TestEveryUnexpiredRotatedSecretSigns: after several rotations each old
// secret still in its overlap signs (one v1, signature each, all verify);
// an expired one does not.
func TestEveryUnexpiredRotatedSecretSigns(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, secret := e.endpoint(t, app, rc.URL, epOpt{})
	var olds []string
	for i := 0; i < 3; i++ {
		old := "whsec_" + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("old-secret-%d-0123456789abcdef012", i)))
		e.oldSecret(t, ep, old, time.Now().Add(time.Duration(i+1)*time.Hour))
		olds = append(olds, old)
	}
	expired := "whsec_" + base64.StdEncoding.EncodeToString([]byte("expired-secret-0123456789abcdef0"))
	e.oldSecret(t, ep, expired, time.Now().Add(-time.Minute))
	id, _ := e.message(t, app, ep, "")
	e.start(t)
	e.waitState(t, id, hook.StateSucceeded)
	r := rc.got()[0]
	if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 4 {
		t.Fatalf("want 4 signatures (current + 3 unexpired), header %q", r.header.Get("webhook-signature"))
	}
	for _, s := range append([]string{secret}, olds...) {
		if !verifyStandardWebhook(s, r.header, r.body) {
			t.Fatalf("secret %s does not verify: %q", s[:12], r.header.Get("webhook-signature"))
		}
	}
	if verifyStandardWebhook(expired, r.header, r.body) {
		t.Fatal("an expired secret still signs")
	}
}

func TestRotationSignsWithBothSecretsUntilOldExpires(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	old := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	epRot, secret := e.endpoint(t, app, rc.URL, epOpt{oldSecret: old, oldExpires: time.Now().Add(time.Hour)})
	epDone, secret2 := e.endpoint(t, app, rc.URL, epOpt{oldSecret: old, oldExpires: time.Now().Add(-time.Minute)})
	id1, _ := e.message(t, app, epRot, "")
	id2, _ := e.message(t, app, epDone, "")
	e.start(t)
	e.waitState(t, id1, hook.StateSucceeded)
	e.waitState(t, id2, hook.StateSucceeded)
	for _, r := range rc.got() {
		sigs := strings.Fields(r.header.Get("webhook-signature"))
		if len(sigs) == 2 {
			if !verifyStandardWebhook(secret, r.header, r.body) || !verifyStandardWebhook(old, r.header, r.body) {
				t.Fatalf("rotation: both secrets must verify, header %q", r.header.Get("webhook-signature"))
			}
			continue
		}
		if len(sigs) != 1 || !verifyStandardWebhook(secret2, r.header, r.body) || verifyStandardWebhook(old, r.header, r.body) {
			t.Fatalf("after expiry only the new secret signs, header %q", r.header.Get("webhook-signature"))
		}
	}
	n2 := 0
	for _, r := range rc.got() {
		n2 += len(strings.Fields(r.header.Get("webhook-signature")))
	}
	if n2 != 3 {
		t.Fatalf("want 2+1 signatures across the two deliveries, got %d", n2)
	}
}

func TestRetriesFollowScheduleOnControlledClockThenDie(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,1m,1h"})
	clock := &fakeClock{}
	id, _ := e.message(t, app, ep, "")
	e.start(t, Options{Now: clock.Now, Rand: func() float64 { return 0.5 }})

	m := e.waitState(t, id, hook.StateFailed)
	if m.Attempts != 1 || m.Next == nil || *m.LastStatus != 503 {
		t.Fatalf("after attempt 1: %+v", m)
	}
	if d := m.Next.Sub(clock.Now()); d < 50*time.Second || d > time.Minute {
		t.Fatalf("second attempt due in %v, want 1m", d)
	}
	time.Sleep(time.Second)
	if n := rc.count(); n != 1 {
		t.Fatalf("retry sent before it was due: %d requests", n)
	}
	clock.Advance(time.Minute)
	eventually(t, "attempt 2", func() bool { m = e.msg(t, id); return m.Attempts == 2 && m.State == hook.StateFailed })
	if d := m.Next.Sub(clock.Now()); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("third attempt due in %v, want 1h", d)
	}
	clock.Advance(30 * time.Minute)
	time.Sleep(time.Second)
	if n := rc.count(); n != 2 {
		t.Fatalf("third attempt sent early: %d requests", n)
	}
	clock.Advance(30 * time.Minute)
	m = e.waitState(t, id, hook.StateDead)
	if m.Attempts != 3 || rc.count() != 3 {
		t.Fatalf("dead after %d attempts, %d requests; want 3", m.Attempts, rc.count())
	}
	var rows []int
	r, _ := e.pool.Query(context.Background(), `SELECT attempt FROM delivery_history WHERE message_id = $1 AND status_code = 503 AND error_class = 'http_5xx' ORDER BY attempt`, id)
	for r.Next() {
		var a int
		r.Scan(&a)
		rows = append(rows, a)
	}
	if len(rows) != 3 || rows[0] != 1 || rows[2] != 3 {
		t.Fatalf("attempt log %v, want 1,2,3", rows)
	}
	if n, _ := e.rdb.Do(context.Background(), e.rdb.B().Zcard().Key(e.prefix+"{deliver}:retries").Build()).AsInt64(); n != 0 {
		t.Fatalf("%d retries left scheduled", n)
	}
}

// A retry is offered only once it is due, to the microsecond Postgres keeps
// next_attempt_at in. The schedule's scores are milliseconds: rounded down,
// the promoter moved a retry up to 1 ms early, the claim (rightly) found it
// not yet due, and the job was acknowledged with nothing done: the retry
// waited for the sweeper (three sweep intervals, 30-40 s late in the fault
// suite's receivers-flaky). Here the clock stands in the millisecond of the
// due time but before it, long enough for the promoter to look ten times,
// then just past it: the retry must be sent then, with the sweeper (which
// would find it only once it is overdue by three sweep intervals) out of
// the picture.
func TestRetryPromotedInItsDueMillisecondIsNotLost(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, failFirst)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,1m"})
	// Half a millisecond into a millisecond: the retry is due there too.
	t0 := time.Now().Truncate(time.Millisecond).Add(500 * time.Microsecond)
	clock := &frozenClock{t: t0}
	id, _ := e.message(t, app, ep, "")
	e.start(t, Options{Now: clock.Now, Rand: func() float64 { return 0.5 }})

	m := e.waitState(t, id, hook.StateFailed)
	due := t0.Add(time.Minute)
	if m.Attempts != 1 || m.Next == nil || !m.Next.Equal(due) {
		t.Fatalf("after attempt 1: %+v, want the retry due at %s", m, due.Format(time.RFC3339Nano))
	}
	clock.Set(due.Add(-200 * time.Microsecond)) // the due millisecond, before the due time
	time.Sleep(time.Second)
	if n := rc.count(); n != 1 {
		t.Fatalf("retry sent before it was due: %d requests", n)
	}
	clock.Set(due.Add(time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for rc.count() < 2 {
		if time.Now().After(deadline) {
			n, _ := e.rdb.Do(context.Background(), e.rdb.B().Zcard().Key(e.prefix+"{deliver}:retries").Build()).AsInt64()
			t.Fatalf("retry not sent 5 s after it was due: %+v, %d retries scheduled", e.msg(t, id), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitState(t, id, hook.StateSucceeded)
}

// failFirst is a receiver that answers 500 to the first request, 200 after.
func failFirst(n int, _ *http.Request) (int, http.Header) {
	if n == 1 {
		return 500, nil
	}
	return 200, nil
}

// A retry offered early by a promoter whose clock runs ahead of this
// process's (another deliver process had the schedule's turn) is taken
// (msgstate.OfferSkew), not acknowledged with nothing done and left to the
// sweeper (an hour here).
func TestRetryOfferedByAFastClockIsNotLeftToTheSweeper(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.SweepInterval = time.Hour
	rc := newReceiver(t, failFirst)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,1m"})
	clock := &frozenClock{t: time.Now()}
	id, _ := e.message(t, app, ep, "")
	mod, _ := e.start(t, Options{Now: clock.Now, Rand: func() float64 { return 0.5 }})
	m := e.waitState(t, id, hook.StateFailed)
	if m.Next == nil {
		t.Fatalf("after attempt 1: %+v, want a retry scheduled", m)
	}
	// The other process's promoter, a second ahead: the retry is due by
	// its clock and moves to the jobs stream (promote.lua's two steps).
	clock.Set(m.Next.Add(-time.Second))
	ctx := context.Background()
	if err := e.rdb.Do(ctx, e.rdb.B().Zrem().Key(mod.retriesKey()).Member(id+" "+ep).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.offer(t, id, ep)
	deadline := time.Now().Add(5 * time.Second)
	for rc.count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("retry offered a second early not sent within 5 s: %+v", e.msg(t, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitState(t, id, hook.StateSucceeded)
}

func TestGlobalScheduleAppliesWithJitterBounds(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 500, nil })
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	e.cfg.Delivery.RetrySchedule = []string{"0s", "10m"}
	ids := []string{}
	for i := 0; i < 5; i++ {
		id, _ := e.message(t, app, ep, "")
		ids = append(ids, id)
	}
	start := time.Now()
	e.start(t)
	for _, id := range ids {
		m := e.waitState(t, id, hook.StateFailed)
		if d := m.Next.Sub(start); d < 8*time.Minute-time.Second || d > 12*time.Minute+30*time.Second {
			t.Fatalf("retry due after %v, want 10m ±20%%", d)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, _ *http.Request) (int, http.Header) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"120"}}
		}
		return 200, nil
	})
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{schedule: "0s,5s,1h"})
	clock := &fakeClock{}
	id, wid := e.message(t, app, ep, "")
	e.start(t, Options{Now: clock.Now})
	m := e.waitState(t, id, hook.StateFailed)
	if d := m.Next.Sub(clock.Now()); d < 110*time.Second || d > 120*time.Second {
		t.Fatalf("retry due in %v, want Retry-After 120s instead of the scheduled 5s", d)
	}
	clock.Advance(30 * time.Second)
	time.Sleep(time.Second)
	if rc.count() != 1 {
		t.Fatalf("retried before Retry-After")
	}
	clock.Advance(91 * time.Second)
	e.waitState(t, id, hook.StateSucceeded)
	got := rc.got()
	if got[1].header.Get("webhook-id") != wid {
		t.Fatalf("retry changed webhook-id")
	}
}

func TestGoneIsFinalAndDisablesEndpointWhichResumesOnReEnable(t *testing.T) {
	e := newEnv(t)
	var gone atomic.Bool
	gone.Store(true)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		if gone.Load() {
			return 410, nil
		}
		return 200, nil
	})
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	id, _ := e.message(t, app, ep, "")
	e.start(t)
	m := e.waitState(t, id, hook.StateDead)
	if m.Attempts != 1 || *m.LastStatus != 410 {
		t.Fatalf("410: %+v", m)
	}
	var enabled bool
	var reason string
	eventually(t, "endpoint disabled", func() bool {
		e.pool.QueryRow(context.Background(), `SELECT enabled, disabled_reason FROM endpoints WHERE id = $1`, ep).Scan(&enabled, &reason)
		return !enabled
	})
	if !strings.Contains(reason, "410") {
		t.Fatalf("disabled_reason %q", reason)
	}
	later, _ := e.message(t, app, ep, "")
	time.Sleep(1500 * time.Millisecond)
	if s := e.msg(t, later).State; s != hook.StatePending {
		t.Fatalf("message for a disabled endpoint is %s, want kept pending", s)
	}
	if rc.count() != 1 {
		t.Fatalf("disabled endpoint was called")
	}
	gone.Store(false)
	e.pool.Exec(context.Background(), `UPDATE endpoints SET enabled = true, disabled_reason = '' WHERE id = $1`, ep)
	e.rdb.Do(context.Background(), e.rdb.B().Publish().Channel(e.keys().EndpointsChanged()).Message(ep).Build())
	e.waitState(t, later, hook.StateSucceeded)
}

func TestFinal4xxIsDeadAfterOneAttempt(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 400, nil })
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	id, _ := e.message(t, app, ep, "")
	e.start(t)
	m := e.waitState(t, id, hook.StateDead)
	if m.Attempts != 1 || rc.count() != 1 || m.LastError != "HTTP 400" {
		t.Fatalf("400: %+v, %d requests", m, rc.count())
	}
}
