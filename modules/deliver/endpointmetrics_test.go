package deliver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrape fetches the registry's metrics over HTTP, as Prometheus does, and
// returns the value of every sample line (name{labels} -> value).
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// seriesOf counts the sample lines that name endpoint id.
func seriesOf(samples map[string]float64, id string) int {
	n := 0
	for k := range samples {
		if strings.Contains(k, `endpoint="`+id+`"`) {
			n++
		}
	}
	return n
}

// Per-endpoint metrics show the hot endpoint (largest backlog) and the
// endpoints named in config, nobody else: queue depth by state, oldest
// waiting age, requests in flight, attempts by outcome.
func TestPerEndpointMetricsShowTheHotEndpointAndNamedOnesOnly(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.MetricsTopEndpoints = 1
	release := make(chan struct{})
	blocking := newReceiver(t, func(int, *http.Request) (int, http.Header) { <-release; return 200, nil })
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	app := e.app(t, "unlimited")
	hot, _ := e.endpoint(t, app, blocking.URL, epOpt{})
	small, _ := e.endpoint(t, app, blocking.URL, epOpt{})
	named, _ := e.endpoint(t, app, blocking.URL, epOpt{})
	e.cfg.Delivery.MetricsEndpoints = []string{named}
	const n = 40
	for range n {
		e.message(t, app, hot, "")
	}
	for range 2 {
		e.message(t, app, small, "")
	}
	reg := prometheus.NewRegistry()
	m, err := New(e.deps(t, e.cfg, "t", reg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	conc := e.cfg.Delivery.ConcurrencyPerEndpoint
	ep := func(name, id string, more ...string) string {
		return name + `{endpoint="` + id + `"` + strings.Join(more, "") + `}`
	}
	var s map[string]float64
	eventually(t, "the hot endpoint's gauges", func() bool {
		s = scrape(t, srv.URL)
		return s[ep("ethhook_deliver_endpoint_in_flight", hot)] == float64(conc) &&
			s[ep("ethhook_deliver_endpoint_messages", hot, `,state="delivering"`)]+
				s[ep("ethhook_deliver_endpoint_messages", hot, `,state="pending"`)] == n
	})
	if s[ep("ethhook_deliver_endpoint_oldest_waiting_seconds", hot)] <= 0 &&
		s[ep("ethhook_deliver_endpoint_messages", hot, `,state="pending"`)] > 0 {
		t.Fatalf("hot endpoint has pending messages but no oldest age: %v", s)
	}
	if k := seriesOf(s, small); k != 0 {
		t.Fatalf("endpoint outside the top 1 and not named has %d series", k)
	}
	if _, ok := s[ep("ethhook_deliver_endpoint_messages", named, `,state="pending"`)]; !ok {
		t.Fatalf("named endpoint has no series:\n%v", s)
	}
	close(release)
	eventually(t, "the hot endpoint's attempts counted", func() bool {
		s = scrape(t, srv.URL)
		return s[ep("ethhook_deliver_endpoint_attempts_total", hot, `,outcome="success"`)] == n
	})
	// Drained, the small endpoint may now be the top one: series stay
	// bounded by top + named whatever happens.
	ids := map[string]bool{}
	for k := range s {
		if _, rest, ok := strings.Cut(k, `endpoint="`); ok {
			ids[strings.SplitN(rest, `"`, 2)[0]] = true
		}
	}
	if len(ids) > 2 {
		t.Fatalf("%d endpoints have series, want at most top (1) + named (1): %v", len(ids), ids)
	}
}
