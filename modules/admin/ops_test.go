package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
)

// opsEndpoint creates an operational endpoint as the admin and returns its id.
func (h *harness) opsEndpoint(t *testing.T, appID string, types ...string) string {
	t.Helper()
	var ep endpointCreated
	h.must(201, "POST", "/api/v1/applications/"+appID+"/endpoints", h.admin,
		map[string]any{"url": "https://ops.example.com/hook", "ops_events": types}).json(t, &ep)
	if strings.Join(ep.OpsEvents, ",") != strings.Join(types, ",") || ep.Secret == "" {
		t.Fatalf("created %+v", ep)
	}
	return ep.ID
}

// TestOnlyAnAdminCreatesOrChangesAnOperationalEndpoint: the admin creates
// one (no filter needed); a member and an API key of the same application
// get 403 on create, on patch and on turning a chain endpoint into one;
// unknown types and a filter beside ops_events are 400 naming the key.
func TestOnlyAnAdminCreatesOrChangesAnOperationalEndpoint(t *testing.T) {
	h := newHarness(t)
	member, appID, key := h.member("m@example.com")
	id := h.opsEndpoint(t, appID, ops.EndpointDisabled, ops.QuotaReached)

	for _, tok := range []string{member, key} {
		r := h.must(403, "POST", "/api/v1/applications/"+appID+"/endpoints", tok,
			map[string]any{"url": "https://ops.example.com/x", "ops_events": []string{ops.QuotaReached}})
		if !strings.Contains(string(r.Body), "ops_events") {
			t.Fatalf("403 does not name ops_events: %s", r.Body)
		}
		h.must(403, "PATCH", "/api/v1/applications/"+appID+"/endpoints/"+id, tok, map[string]any{"url": "https://evil.example.com/"})
	}
	var chainEP endpointCreated
	h.must(201, "POST", "/api/v1/applications/"+appID+"/endpoints", member,
		map[string]any{"url": "https://c.example.com/", "filter": map[string]any{"chains": []int{1}}}).json(t, &chainEP)
	h.must(403, "PATCH", "/api/v1/applications/"+appID+"/endpoints/"+chainEP.ID, member, map[string]any{"ops_events": []string{ops.QuotaReached}})

	r := h.must(400, "POST", "/api/v1/applications/"+appID+"/endpoints", h.admin,
		map[string]any{"url": "https://ops.example.com/x", "ops_events": []string{"quota.nearly"}})
	if !strings.Contains(string(r.Body), `ops_events[0]`) || !strings.Contains(string(r.Body), "quota.nearly") {
		t.Fatalf("unknown type: %s", r.Body)
	}
	r = h.must(400, "POST", "/api/v1/applications/"+appID+"/endpoints", h.admin,
		map[string]any{"url": "https://ops.example.com/x", "ops_events": []string{ops.QuotaReached}, "filter": map[string]any{"chains": []int{1}}})
	if !strings.Contains(string(r.Body), `"filter"`) {
		t.Fatalf("filter beside ops_events: %s", r.Body)
	}
	// The admin changes it like any endpoint.
	var got hook.Endpoint
	h.must(200, "PATCH", "/api/v1/applications/"+appID+"/endpoints/"+id, h.admin, map[string]any{"ops_events": []string{ops.IngestStalled}}).json(t, &got)
	if strings.Join(got.OpsEvents, ",") != ops.IngestStalled {
		t.Fatalf("patched ops_events %v", got.OpsEvents)
	}
	if _, err := endpoint.LoadOne(context.Background(), h.m.pool, id); err != nil {
		t.Fatal(err)
	}
}

// opsMessages returns the payloads queued for an endpoint, by event id.
func (h *harness) opsMessages(t *testing.T, ep string) map[string]map[string]any {
	t.Helper()
	rows, err := h.m.pool.Query(context.Background(), `SELECT event_id, payload::text FROM messages WHERE endpoint_id = $1`, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		var typ, body string
		if err := rows.Scan(&typ, &body); err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		if out[typ] != nil {
			t.Fatalf("two %s messages", typ) // UNIQUE (endpoint_id, event_id, type) forbids it
		}
		out[typ] = p
	}
	return out
}

// TestIngestStalledIsSentOnceWhenACursorStopsMoving: the admin loop sees a
// chain's cursor move, then stand still; past admin.ingest_stall_after it
// queues one ingest.stalled webhook naming the chain and block, however
// often it looks again, and another only after the cursor moved and
// stopped again.
func TestIngestStalledIsSentOnceWhenACursorStopsMoving(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.IngestStallAfter = time.Minute })
	_, appID, _ := h.member("o@example.com")
	ep := h.opsEndpoint(t, appID, ops.IngestStalled)
	ctx := context.Background()
	setCursor := func(c string) {
		if err := h.m.rdb.Do(ctx, h.m.rdb.B().Set().Key(h.keys.Chain(1, "cursor")).Value(c).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	setCursor("100:0xaa")
	h.m.checkStalls(ctx, t0)
	setCursor("101:0xbb")
	h.m.checkStalls(ctx, t0.Add(10*time.Second))
	h.m.checkStalls(ctx, t0.Add(40*time.Second))
	if n := len(h.opsMessages(t, ep)); n != 0 {
		t.Fatalf("%d events before the stall bound", n)
	}
	for _, d := range []time.Duration{75 * time.Second, 80 * time.Second, 10 * time.Minute} {
		h.m.checkStalls(ctx, t0.Add(d))
	}
	// eth's cursor stood at 101; the devnet's never existed (no ingester).
	got := h.opsMessages(t, ep)
	p := got["ops:ingest.stalled:1:101:0xbb"]
	if len(got) != 2 || p == nil || got["ops:ingest.stalled:31337:none"] == nil {
		t.Fatalf("messages %v, want one ingest.stalled for eth at 101 and one for the devnet", got)
	}
	data := p["data"].(map[string]any)
	if p["type"] != ops.IngestStalled || data["chain"] != "eth" || data["chain_id"] != float64(1) || data["block_number"] != float64(101) {
		t.Fatalf("ingest.stalled payload %v", p)
	}
	// Moves, stalls again: a second event.
	setCursor("102:0xcc")
	h.m.checkStalls(ctx, t0.Add(11*time.Minute))
	h.m.checkStalls(ctx, t0.Add(13*time.Minute))
	var n int
	h.m.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE endpoint_id = $1 AND type = $2`, ep, ops.IngestStalled).Scan(&n)
	if n != 3 {
		t.Fatalf("%d ingest.stalled messages after eth's second stall, want 3", n)
	}
}

// TestQuotaReachedIsSentOnceAMonth: an application passes its quota over
// three admin passes; the operator's endpoint gets one quota.reached
// naming the application, plan, deliveries and quota.
func TestQuotaReachedIsSentOnceAMonth(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "tiny", "name": "Tiny", "monthly_quota": 2, "max_endpoints": 1})
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "q", PlanID: "tiny"}).json(t, &app)
	var operator appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "operator"}).json(t, &operator)
	ep := h.opsEndpoint(t, operator.ID, ops.QuotaReached)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := h.store.Pool().Exec(ctx, `INSERT INTO usage (app_id, month, deliveries)
			VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, $2)
			ON CONFLICT (app_id, month) DO UPDATE SET deliveries = EXCLUDED.deliveries`, app.ID, 2+i); err != nil {
			t.Fatal(err)
		}
		h.m.releaseOnce(ctx)
	}
	got := h.opsMessages(t, ep)
	month := time.Now().UTC().Format("2006-01")
	p := got["ops:quota.reached:"+app.ID+":"+month]
	if len(got) != 1 || p == nil {
		t.Fatalf("messages %v, want one quota.reached for %s", got, app.ID)
	}
	d := p["data"].(map[string]any)
	if d["app_id"] != app.ID || d["plan"] != "tiny" || d["monthly_quota"] != float64(2) || d["deliveries"].(float64) < 2 {
		t.Fatalf("quota.reached data %v", d)
	}
}

// TestMessageSearchParametersAreCheckedNamingTheKey: status_code and arg
// reach the message service; bad values are 400 naming the parameter.
func TestMessageSearchParametersAreCheckedNamingTheKey(t *testing.T) {
	h := newHarness(t)
	tok, appID, _ := h.member("s@example.com")
	base := "/api/v1/applications/" + appID + "/messages"
	h.must(200, "GET", base+"?status_code=500&arg=to:0xabc&arg=value:5", tok, nil)
	for q, want := range map[string]string{
		"?status_code=abc":                 "status_code",
		"?status_code=700":                 "status_code",
		"?arg=to":                          "arg",
		"?arg=a:1&arg=b:1&arg=c:1&arg=d:1": "at most 3",
		"?arg=to:0x1&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z": "at most 168h",
	} {
		r := h.must(400, "GET", base+q, tok, nil)
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("%s: %s, want %q", q, r.Body, want)
		}
	}
}
