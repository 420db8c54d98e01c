package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// TestEndpointPageAndDashboardShowARateLimitBacklog: while deliver records
// a rate-limit backlog for an endpoint, its page says it is held back by
// its rate limit with the backlog and since when, and the dashboard lists
// it; a member of another application sees it on neither.
func TestEndpointPageAndDashboardShowARateLimitBacklog(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, err := h.store.CreateApplication(context.Background(), hook.Operator, "Shop", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.store.CreateApplication(context.Background(), hook.Operator, "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	h.user("member@example.com", tenant.RoleMember, other.ID)
	ep := s.endpoint(t, a.ID)
	c := h.client()
	c.login("admin@example.com")
	page := "/apps/" + a.ID + "/endpoints/" + ep.ID
	if _, body := c.get(page); strings.Contains(body, `id="rate-limited"`) {
		t.Fatal("endpoint page shows a rate-limit backlog with none recorded")
	}
	since := time.Now().Add(-5 * time.Minute)
	r := hook.RateLimited{AppID: a.ID, RateLimit: 10, Since: since, HeldAt: time.Now(), Backlog: 1493, MaxBacklog: 1500}
	if err := s.rdb.Do(context.Background(), s.rdb.B().Hset().Key(s.keys.RateLimited()).FieldValue().FieldValue(ep.ID, r.String()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	resp, body := c.get(page)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="rate-limited"`, "Held back by its rate limit", "1493 webhooks are waiting", "(at most 1500)", "10/s", "held back since", "(<time", "5m ago"} {
		if !strings.Contains(body, want) {
			i := strings.Index(body, "<h1")
			t.Fatalf("endpoint page lacks %q:\n%s", want, body[max(0, i):min(len(body), i+1500)])
		}
	}
	resp, body = c.get("/dashboard/live")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="rate-limited"`) || !strings.Contains(body, "1493 waiting at 10/s") || !strings.Contains(body, ep.URL) {
		i := strings.Index(body, "fail-h")
		t.Fatalf("dashboard lacks the endpoint held back:\n%s", body[max(0, i):])
	}
	m := h.client()
	m.login("member@example.com")
	if _, body := m.get("/dashboard/live"); strings.Contains(body, `id="rate-limited"`) {
		t.Fatal("a member of another application sees the backlog on the dashboard")
	}
}

// TestEd25519EndpointsSecretPanelIsAVerificationKey: an ed25519 endpoint
// (v1a) shows its whpk_ public key as what it is, not as a signing
// secret; an hmac endpoint keeps "Signing secret".
func TestEd25519EndpointsSecretPanelIsAVerificationKey(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, err := h.store.CreateApplication(context.Background(), hook.Operator, "Shop", "")
	if err != nil {
		t.Fatal(err)
	}
	ed, _, err := s.eps.Create(context.Background(), hook.Operator, a.ID, endpoint.Input{URL: "https://receiver.example.com/ed",
		Signature: sign.SchemeEd25519, Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	if err != nil {
		t.Fatal(err)
	}
	hm := s.endpoint(t, a.ID)
	c := h.client()
	c.login("admin@example.com")
	_, body := c.get("/apps/" + a.ID + "/endpoints/" + ed.ID)
	if !strings.Contains(body, `<h2 id="secret-h">Verification key</h2>`) || strings.Contains(body, "Signing secret") {
		i := strings.Index(body, "secret-h")
		t.Fatalf("ed25519 endpoint's panel:\n%s", body[max(0, i-100):min(len(body), i+800)])
	}
	resp, part := c.post("/apps/"+a.ID+"/endpoints/"+ed.ID+"/secret", nil)
	wantStatus(t, resp, part, http.StatusOK)
	if !strings.Contains(part, "Public key") || !strings.Contains(part, "whpk_") || strings.Contains(part, "Signing secret") {
		t.Fatalf("revealed ed25519 key:\n%s", part)
	}
	_, body = c.get("/apps/" + a.ID + "/endpoints/" + hm.ID)
	if !strings.Contains(body, `<h2 id="secret-h">Signing secret</h2>`) {
		t.Fatal("hmac endpoint's panel is no longer the signing secret")
	}
	_, part = c.post("/apps/"+a.ID+"/endpoints/"+hm.ID+"/secret", nil)
	if !strings.Contains(part, "Signing secret") || !strings.Contains(part, "whsec_") {
		t.Fatalf("revealed hmac secret:\n%s", part)
	}
}
