package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/tenant"
)

// An admin makes an operational endpoint (ops_events, issue 15) from the
// endpoint form; a member sees no such field and cannot make or change one.
func TestEndpointFormOffersOperationalEventsToAdminsOnly(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Alpha")
	h.user("member@example.com", tenant.RoleMember, a.ID)

	admin := h.client()
	admin.login("admin@example.com")
	resp, body := admin.get("/apps/" + a.ID + "/endpoints/new")
	wantStatus(t, resp, body, http.StatusOK)
	for _, typ := range ops.Types {
		if !strings.Contains(body, `name="ops_events" value="`+typ+`"`) {
			t.Fatalf("the admin's endpoint form offers no ops_events box for %s:\n%s", typ, body)
		}
	}
	// The new form comes with the devnet chain ticked and its confirmations:
	// an operational endpoint leaves them out.
	form := url.Values{"url": {"https://ops.example.com/hook"}, "chains": {"31337"}, "confirmations": {"3"},
		"ops_events": {ops.QuotaReached, ops.EndpointDisabled}, "enabled": {"on"}}
	resp, body = admin.post("/apps/"+a.ID+"/endpoints", form)
	wantStatus(t, resp, body, http.StatusSeeOther)
	eps, _, err := s.eps.List(context.Background(), hook.Operator, a.ID, "", 0)
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints %v, %v: want the one just made", eps, err)
	}
	ep := eps[0]
	if want := []string{ops.EndpointDisabled, ops.QuotaReached}; !slices.Equal(ep.OpsEvents, want) || len(ep.Filter.Chains) != 0 || ep.Confirmations != 0 {
		t.Fatalf("endpoint ops_events %v chains %v confirmations %d, want %v and no chain settings", ep.OpsEvents, ep.Filter.Chains, ep.Confirmations, want)
	}
	resp, body = admin.get("/apps/" + a.ID + "/endpoints/" + ep.ID)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `value="`+ops.QuotaReached+`" checked`) || strings.Contains(body, `value="`+ops.BreakerOpened+`" checked`) {
		t.Fatalf("the edit form does not show the endpoint's ops_events ticked:\n%s", body)
	}

	member := h.client()
	member.login("member@example.com")
	resp, body = member.get("/apps/" + a.ID + "/endpoints/new")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, `name="ops_events"`) {
		t.Fatal("a member's endpoint form offers ops_events")
	}
	// Posted by hand, they are refused, and so is changing the admin's.
	form.Set("url", "https://member.example.com/hook")
	form.Del("_csrf") // the admin's, set by the post above
	resp, body = member.post("/apps/"+a.ID+"/endpoints", form)
	wantStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(body, "only an admin") {
		t.Fatalf("a member making an operational endpoint:\n%s", body)
	}
	resp, body = member.post("/apps/"+a.ID+"/endpoints/"+ep.ID, url.Values{"url": {"https://member.example.com/hook"}})
	wantStatus(t, resp, body, http.StatusForbidden)
	if got, err := s.eps.Get(context.Background(), hook.Operator, a.ID, ep.ID); err != nil || got.URL != "https://ops.example.com/hook" || len(got.OpsEvents) != 2 {
		t.Fatalf("after a member's edit: %+v, %v", got, err)
	}
	if eps, _, _ := s.eps.List(context.Background(), hook.Operator, a.ID, "", 0); len(eps) != 1 {
		t.Fatalf("%d endpoints, want only the admin's", len(eps))
	}
}
