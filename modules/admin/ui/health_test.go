package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// TestEndpointPageShowsHealth: the endpoint page shows the last hour's
// and day's attempts, success rate, percentiles and last error.
func TestEndpointPageShowsHealth(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, err := h.store.CreateApplication(context.Background(), hook.Operator, "Shop", "")
	if err != nil {
		t.Fatal(err)
	}
	ep := s.endpoint(t, a.ID)
	msg := s.message(t, a.ID, ep.ID, hook.StateFailed, 1, "m")
	for i, st := range []int{200, 200, 200, 503} {
		if _, err := s.pool.Exec(context.Background(), `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, error, latency_ms, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now() - interval '5 minutes')`, msg, ep.ID, a.ID, i+1, st, map[bool]string{true: "HTTP 503"}[st == 503], 40); err != nil {
			t.Fatal(err)
		}
	}
	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/apps/" + a.ID + "/endpoints/" + ep.ID)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="health-h"`, "<td>1h</td><td>4</td><td>75.0%</td><td>40 ms</td>", "HTTP 503 HTTP 503", "<td>24h</td>"} {
		if !strings.Contains(body, want) {
			i := strings.Index(body, "health-h")
			t.Fatalf("endpoint page lacks %q:\n%s", want, body[max(0, i):min(len(body), i+1500)])
		}
	}
}
