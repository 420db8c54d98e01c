package deliver

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/hook"
)

// The queue depth by state comes from the per-endpoint metrics' scan when
// those are on (the default), from a count of its own when they are off:
// both are checked.
func TestMetricsCountAttemptsLatencyAndQueueDepth(t *testing.T) {
	for _, top := range []int{20, 0} {
		t.Run(fmt.Sprintf("top_endpoints=%d", top), func(t *testing.T) { testMetrics(t, top) })
	}
}

func testMetrics(t *testing.T, top int) {
	e := newEnv(t)
	e.cfg.Delivery.MetricsTopEndpoints = top
	ok := newReceiver(t, nil)
	bad := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 502, nil })
	app := e.app(t, "")
	epOK, _ := e.endpoint(t, app, ok.URL, epOpt{})
	epBad, _ := e.endpoint(t, app, bad.URL, epOpt{schedule: "0s,1h"})
	id1, _ := e.message(t, app, epOK, "")
	id2, _ := e.message(t, app, epBad, "")
	reg := prometheus.NewRegistry()
	m, err := New(e.deps(t, e.cfg, "t", reg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.waitState(t, id1, hook.StateSucceeded)
	e.waitState(t, id2, hook.StateFailed)
	eventually(t, "metrics", func() bool {
		return testutil.ToFloat64(m.met.attempts.WithLabelValues("success", "2xx")) == 1 &&
			testutil.ToFloat64(m.met.attempts.WithLabelValues("retry", "5xx")) == 1 &&
			testutil.ToFloat64(m.met.messages.WithLabelValues("failed")) == 1 &&
			testutil.ToFloat64(m.met.scheduled) == 1
	})
	// With per-endpoint metrics on, their scan gives the totals (no count
	// of its own).
	if totals := m.refreshEndpointMetrics(ctx); top > 0 && (totals == nil || totals["failed"] != 1) {
		t.Errorf("totals from the per-endpoint scan: %v, want failed 1", totals)
	}
	if n := testutil.CollectAndCount(m.met.latency); n != 1 {
		t.Fatalf("latency histogram series %d", n)
	}
	names := map[string]bool{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"ethhook_deliver_attempts_total", "ethhook_deliver_committed_to_success_seconds",
		"ethhook_deliver_messages", "ethhook_deliver_breakers_open", "ethhook_deliver_endpoints_disabled", "ethhook_deliver_scheduled_retries"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}
