package hook

import (
	"testing"
	"time"
)

func TestRateLimitedRoundTripsAndRefusesMalformedText(t *testing.T) {
	since := time.UnixMilli(1764660000123)
	r := RateLimited{AppID: "app_1:odd", RateLimit: 10, Since: since, HeldAt: since.Add(5 * time.Second), Backlog: 1493, MaxBacklog: 1500}
	got, err := ParseRateLimited(r.String())
	if err != nil || !got.Since.Equal(r.Since) || !got.HeldAt.Equal(r.HeldAt) || got.AppID != r.AppID ||
		got.Backlog != r.Backlog || got.MaxBacklog != r.MaxBacklog || got.RateLimit != r.RateLimit {
		t.Fatalf("ParseRateLimited(%q) = %+v, %v", r.String(), got, err)
	}
	for _, bad := range []string{"", "1:2:3:4:5", "x:2:3:4:5:app", "1:2:-3:4:5:app"} {
		if _, err := ParseRateLimited(bad); err == nil {
			t.Errorf("ParseRateLimited(%q) accepted", bad)
		}
	}
}
