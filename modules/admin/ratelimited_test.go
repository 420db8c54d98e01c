package admin

import (
	"context"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
)

// TestEndpointHealthShowsARateLimitBacklogUnderWay: while deliver records
// an episode for the endpoint (hook.RateLimited in the hash), its health
// answer says it is held back by its rate limit, with the backlog and
// since when; without one, or with one recorded for another application,
// it says nothing. The harness checks each answer against the document.
func TestEndpointHealthShowsARateLimitBacklogUnderWay(t *testing.T) {
	h := newHarness(t)
	_, appID, key := h.member("m@example.com")
	base := "/api/v1/applications/" + appID + "/endpoints"
	var ep endpointCreated
	h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/hook", "filter": map[string]any{"chains": []int{31337}}}).json(t, &ep)
	var health endpointHealth
	if h.must(200, "GET", base+"/"+ep.ID+"/health", key, nil).json(t, &health); health.RateLimited != nil {
		t.Fatalf("rate_limited %+v with no episode", health.RateLimited)
	}
	since := time.Now().Add(-3 * time.Minute).Truncate(time.Millisecond)
	set := func(r hook.RateLimited) {
		t.Helper()
		if err := h.m.rdb.Do(context.Background(), h.m.rdb.B().Hset().Key(h.keys.RateLimited()).FieldValue().FieldValue(ep.ID, r.String()).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	set(hook.RateLimited{AppID: "app_someone_else", RateLimit: 10, Since: since, HeldAt: time.Now(), Backlog: 7, MaxBacklog: 7})
	if h.must(200, "GET", base+"/"+ep.ID+"/health", key, nil).json(t, &health); health.RateLimited != nil {
		t.Fatalf("rate_limited %+v recorded for another application shown", health.RateLimited)
	}
	set(hook.RateLimited{AppID: appID, RateLimit: 10, Since: since, HeldAt: time.Now(), Backlog: 1493, MaxBacklog: 1500})
	h.must(200, "GET", base+"/"+ep.ID+"/health", key, nil).json(t, &health)
	if r := health.RateLimited; r == nil || r.Backlog != 1493 || r.MaxBacklog != 1500 || r.RateLimit != 10 || !r.Since.Equal(since) {
		t.Fatalf("rate_limited %+v, want backlog 1493 at 10/s since %s", r, since)
	}
}

// TestOperationalEndpointSubscribesToRateLimitEvents: the API takes the
// new types in ops_events (and the document's enum lists them).
func TestOperationalEndpointSubscribesToRateLimitEvents(t *testing.T) {
	h := newHarness(t)
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "ops"}).json(t, &app)
	var ep endpointCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/endpoints", h.admin, map[string]any{"url": "https://ops.example.com/hook",
		"ops_events": []string{ops.EndpointRateLimited, ops.EndpointRateLimitCleared}}).json(t, &ep)
	if len(ep.OpsEvents) != 2 {
		t.Fatalf("ops_events %v", ep.OpsEvents)
	}
	h.must(400, "POST", "/api/v1/applications/"+app.ID+"/endpoints", h.admin, map[string]any{"url": "https://ops.example.com/hook",
		"ops_events": []string{"endpoint.rate_limit"}})
}
