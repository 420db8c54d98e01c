package ops

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRateLimitEventsOfOneEpisodeShareTheKeyAndTheStart: the start and the
// end of one episode carry the same key (the endpoint and the start, so
// every deliver process reporting it makes one webhook of each) and the
// same since; the end says how long it lasted.
func TestRateLimitEventsOfOneEpisodeShareTheKeyAndTheStart(t *testing.T) {
	since := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	start := RateLimitedEvent(RateLimited{EndpointID: "ep_1", AppID: "app_1", RateLimit: 10, Backlog: 120}, since, since.Add(10*time.Second))
	end := RateLimitClearedEvent(RateLimitCleared{EndpointID: "ep_1", AppID: "app_1", RateLimit: 10, MaxBacklog: 900, Reason: ClearedDrained}, since, since.Add(17*time.Minute))
	if start.Key != end.Key || start.ID() == end.ID() || start.Subject != "ep_1" || !Valid(start.Type) || !Valid(end.Type) {
		t.Fatalf("start %+v, end %+v", start, end)
	}
	b, err := end.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Data RateLimitCleared `json:"data"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Data.Since != "2026-11-01T12:00:00Z" || p.Data.DurationSeconds != 17*60 || p.Data.MaxBacklog != 900 {
		t.Fatalf("payload %s (%v)", b, err)
	}
	if start.Data.(RateLimited).Since != p.Data.Since {
		t.Fatal("start and end name different starts")
	}
}
