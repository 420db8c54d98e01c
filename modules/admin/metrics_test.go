package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestAPIMetricsBoundTheMethodLabel sends requests with methods a client
// made up (one per request, as an attacker would to grow series) and reads
// the /metrics text: every one counts under method="other", the known
// methods keep their names.
func TestAPIMetricsBoundTheMethodLabel(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{"FOO", "BREW", "X-" + strings.Repeat("A", 200), "get"} {
		h.do(m, "/api/v1/applications", h.admin, nil)
	}
	h.must(200, "GET", "/api/v1/applications", h.admin, nil)

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	methods := map[string]bool{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "ethhook_api_requests_total{") {
			continue
		}
		i := strings.Index(line, `method="`)
		if i < 0 {
			t.Fatalf("series without a method label: %s", line)
		}
		v := line[i+len(`method="`):]
		methods[v[:strings.IndexByte(v, '"')]] = true
	}
	for m := range methods {
		if m != "other" && metricMethod(m) != m {
			t.Errorf("method label %q is not one of the known methods", m)
		}
	}
	if !methods["other"] || !methods["GET"] {
		t.Fatalf("method labels %v, want GET and other", methods)
	}
	if len(methods) > 10 {
		t.Fatalf("%d method label values: %v", len(methods), methods)
	}
}
